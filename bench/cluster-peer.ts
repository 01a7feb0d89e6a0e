import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { NODE_URL, blobFile, curlIn, registryToken, startNginxIn, waitForCommit } from './cluster-nodes.ts'
import type { CurlTiming } from './cluster-nodes.ts'
import { MB, clusterRow } from './cluster-report.ts'
import type { ClusterRow } from './cluster-report.ts'
import { expectBody, mbps, sampled, selfStats, sha256sum, startNodes, stopNodes, upstreamBlob, upstreamBytes } from './cluster-scenario.ts'
import type { ClusterContext, ClusterScenario } from './cluster-scenario.ts'

/**
 * Goal 1: B pulls a blob A already holds, at ≥ 0.8 × plain HTTP between the same two namespaces: nginx
 * in A's namespace serving A's committed blob file, fetched from B's namespace by the same client
 * (curl), once before and once after; the better run is the baseline.
 */
async function run (ctx: ClusterContext, rows: ClusterRow[]): Promise<void> {
  const b = upstreamBlob(ctx, 'peer')
  const base = clusterRow('peer-baseline', 'baseline: plain HTTP A → B (nginx)')
  const row = clusterRow('peer', 'peer fetch: B pulls what A holds')
  row.goal = '≥ 0.8 × plain HTTP, upstream 0'
  row.ratioOf = '× plain HTTP'
  rows.push(base, row)
  const nodes = await startNodes(ctx, 'peer', 2)
  const [A, B] = nodes as [typeof nodes[0], typeof nodes[0]]
  let nginx: { url: string; child: ChildProcess } | null = null
  try {
    const url = `${NODE_URL}${b.path}`
    ctx.log('peer: A fetches the blob (warm-up)')
    const tokenA = await registryToken(ctx.lan, A.host.ns, url)
    expectBody('A warming', await curlIn(ctx.lan, A.host.ns, url, ctx.timeoutMs, { token: tokenA }), b.size)
    await waitForCommit(A, b.digest, b.size)

    const baselines: CurlTiming[] = []
    let plain: string | null = null
    if (ctx.nginxBin !== null) {
      nginx = await startNginxIn(ctx.lan, ctx.nginxBin, A.host, join(A.cacheDir, 'blobs', 'sha256'), join(ctx.dir, 'peer', 'nginx'))
      plain = `${nginx.url}/${b.digest.slice(0, 2)}/${b.digest}`
      baselines.push(await curlIn(ctx.lan, B.host.ns, plain, ctx.timeoutMs))
    }
    const tokenB = await registryToken(ctx.lan, B.host.ns, url)
    const before = await upstreamBytes(ctx, 'peer')
    ctx.log('peer: B fetches it')
    const { value: t, rssMiB } = await sampled(nodes, async () => await curlIn(ctx.lan, B.host.ns, url, ctx.timeoutMs, { token: tokenB }))
    const fromUpstream = await upstreamBytes(ctx, 'peer') - before
    if (plain !== null) baselines.push(await curlIn(ctx.lan, B.host.ns, plain, ctx.timeoutMs))

    for (const [i, x] of baselines.entries()) expectBody(`nginx run ${i + 1}`, x, b.size)
    const best = baselines.length === 0 ? null : Math.max(...baselines.map(x => mbps(b.size, x.totalS)))
    base.mbps = best
    base.timeS = best === null ? null : b.size / MB / best
    base.notes = best === null
      ? 'nginx not installed (apt-get install nginx-light)'
      : `curl in B's namespace, before and after the peer fetch: ${baselines.map(x => mbps(b.size, x.totalS).toFixed(0)).join(', ')} MB/s; best taken`

    row.rssMiB = rssMiB
    expectBody('B from A', t, b.size)
    row.mbps = mbps(b.size, t.totalS)
    row.timeS = t.totalS
    row.upstreamRatio = fromUpstream / b.size
    await waitForCommit(B, b.digest, b.size)
    const got = await sha256sum(blobFile(B, b.digest))
    if (got !== b.digest) throw new Error(`B committed wrong bytes: sha256 ${got}`)
    const s = await selfStats(ctx, B)
    row.notes = `TTFB ${t.ttfbS.toFixed(2)} s; B's bytes_from_peers ÷ size ${((s.bytes_from_peers ?? 0) / b.size).toFixed(3)}; B's blob file sha256 checked`
    if (best !== null) {
      row.ratio = row.mbps / best
      row.pass = row.ratio >= 0.8 && fromUpstream === 0
    }
  } finally {
    if (nginx !== null) await ctx.children.stop(nginx.child)
    await stopNodes(ctx, 'peer', nodes)
  }
}

export const peerScenario: ClusterScenario = { id: 'peer', blobs: ['peer'], run }
