import { curlIn, waitForCommit } from './cluster-nodes.ts'
import { clusterRow } from './cluster-report.ts'
import type { ClusterRow } from './cluster-report.ts'
import { blobUrl, expectBody, mbps, sampled, startNodes, stopNodes, tokenFor, upstreamBlob, upstreamBytes } from './cluster-scenario.ts'
import type { ClusterContext, ClusterScenario } from './cluster-scenario.ts'

/**
 * Three nodes ask for the same cold blob at once, one of them with a cache too small to hold it (it
 * passes the blob through to its client, uncached). The office's upstream should still carry the blob
 * about once: the small node reads what the others fetch (in a keyed cluster; an open one cannot vouch
 * for bytes still downloading) and owns no share of the upstream ranges. Its client's bytes are hashed.
 */
async function run (ctx: ClusterContext, rows: ClusterRow[]): Promise<void> {
  const blob = upstreamBlob(ctx, 'small')
  const row = clusterRow('small', '3 nodes at once, one whose cache cannot hold the blob')
  row.ratioOf = 'upstream bytes ÷ size'
  row.goal = 'upstream ≤ 1.1 × size, right bytes'
  rows.push(row)
  // Half the blob, in GB (the config's unit).
  const smallGb = blob.size / 2 / 1e9
  const nodes = await startNodes(ctx, 'small', 3, 0, i => i === 2 ? smallGb : undefined)
  try {
    const url = blobUrl(ctx, blob)
    const tokens = await Promise.all(nodes.map(async n => await tokenFor(ctx, n.host.ns, url)))
    const before = await upstreamBytes(ctx, 'small')
    const t0 = performance.now()
    const { value: times, rssMiB, rssEach, cpuS } = await sampled(nodes, async () => await Promise.all(nodes.map(async (n, i) =>
      await curlIn(ctx.lan, n.host.ns, url, ctx.timeoutMs, { token: tokens[i] ?? null, t0, sha256: i === 2 }))))
    const fromUpstream = await upstreamBytes(ctx, 'small') - before
    for (const [i, t] of times.entries()) expectBody(`node ${nodes[i]?.name ?? i}`, t, blob.size)
    const small = times[2]
    if (small?.sha256 !== blob.digest) throw new Error(`the small node's client got wrong bytes: sha256 ${small?.sha256 ?? 'none'}`)
    await Promise.all(nodes.slice(0, 2).map(async n => { await waitForCommit(n, blob.digest, blob.size) }))
    const last = Math.max(...times.map(t => t.wallS))
    row.timeS = last
    row.mbps = mbps(blob.size, last)
    row.ratio = fromUpstream / blob.size
    row.upstreamRatio = row.ratio
    row.rssMiB = rssMiB
    row.pass = row.ratio <= 1.1
    row.notes = `cache of ${nodes[2]?.name ?? 'C'}: ${smallGb.toFixed(2)} GB (passes the blob through, client's sha256 checked); ` +
      `finish s: ${times.map((t, i) => `${nodes[i]?.name ?? i} ${t.wallS.toFixed(1)}`).join(', ')}; CPU s: ${cpuS.map(c => c.toFixed(1)).join(', ')}; peak RSS MiB: ${rssEach.map(r => r.toFixed(0)).join(', ')}`
  } finally {
    await stopNodes(ctx, 'small', nodes)
  }
}

export const smallScenario: ClusterScenario = { id: 'small', blobs: ['small'], run }
