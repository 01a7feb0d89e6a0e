import { curlIn, waitForCommit } from './cluster-nodes.ts'
import { MB, clusterRow } from './cluster-report.ts'
import type { ClusterRow } from './cluster-report.ts'
import { blobUrl, expectBody, tokenFor, mbps, sampled, selfStats, startNodes, stopNodes, upstreamBlob, upstreamBytes } from './cluster-scenario.ts'
import type { ClusterContext, ClusterScenario } from './cluster-scenario.ts'

/**
 * Goal 2: every node asks for the same cold blob at once. The office's upstream should carry the blob
 * about once (≤ 1.1 × its size, counted at the upstream) and the last node should finish within 1.3 ×
 * the time one node takes alone (measured first, in the same cluster, on another cold blob).
 */
async function run (ctx: ClusterContext, rows: ClusterRow[]): Promise<void> {
  const count = ctx.opts.nodes
  const alone = upstreamBlob(ctx, 'swarm-alone')
  const shared = upstreamBlob(ctx, 'swarm-shared')
  const one = clusterRow('swarm-alone', '1 node alone, cold blob')
  one.ratioOf = '× upstream limit'
  const all = clusterRow('swarm', `${count} nodes, same cold blob at once`)
  all.ratioOf = 'last node time ÷ 1 node alone'
  all.goal = 'time ≤ 1.3 ×, upstream ≤ 1.1 × size'
  rows.push(one, all)
  const nodes = await startNodes(ctx, 'swarm', count)
  try {
    const A = nodes[0] as typeof nodes[0]
    ctx.log('swarm: one node alone')
    const url1 = blobUrl(ctx, alone)
    const token1 = await tokenFor(ctx, A.host.ns, url1)
    const before1 = await upstreamBytes(ctx, 'swarm-alone')
    const { value: t1, rssMiB: rss1, cpuS: cpu1, sysS: sys1 } = await sampled([A], async () => await curlIn(ctx.lan, A.host.ns, url1, ctx.timeoutMs, { token: token1 }))
    expectBody('A alone', t1, alone.size)
    const limit = Math.min(ctx.opts.aggregate, ctx.opts.conns * ctx.opts.perConn) / MB
    one.mbps = mbps(alone.size, t1.wallS)
    one.timeS = t1.wallS
    one.ratio = one.mbps / limit
    one.rssMiB = rss1
    one.upstreamRatio = (await upstreamBytes(ctx, 'swarm-alone') - before1) / alone.size
    one.notes = `TTFB ${t1.ttfbS.toFixed(2)} s; limit ${limit.toFixed(0)} MB/s; CPU s ${cpu1[0]?.toFixed(1)} (system ${sys1[0]?.toFixed(1)})`
    await waitForCommit(A, alone.digest, alone.size)

    ctx.log(`swarm: ${count} nodes at once`)
    const url = blobUrl(ctx, shared)
    const tokens = await Promise.all(nodes.map(async n => await tokenFor(ctx, n.host.ns, url)))
    const before = await upstreamBytes(ctx, 'swarm-shared')
    const t0 = performance.now()
    const { value: times, rssMiB, cpuS, sysS } = await sampled(nodes, async () => await Promise.all(nodes.map(async (n, i) =>
      await curlIn(ctx.lan, n.host.ns, url, ctx.timeoutMs, { token: tokens[i] ?? null, t0 }))))
    const fromUpstream = await upstreamBytes(ctx, 'swarm-shared') - before
    for (const [i, t] of times.entries()) expectBody(`node ${nodes[i]?.name ?? i}`, t, shared.size)
    const last = Math.max(...times.map(t => t.wallS))
    all.timeS = last
    all.mbps = mbps(shared.size, last)
    all.ratio = last / t1.wallS
    all.upstreamRatio = fromUpstream / shared.size
    all.rssMiB = rssMiB
    await Promise.all(nodes.map(async n => { await waitForCommit(n, shared.digest, shared.size) }))
    const stats = await Promise.all(nodes.map(async n => await selfStats(ctx, n)))
    const peers = stats.map(s => (s.bytes_from_peers ?? 0) / shared.size)
    const sent = stats.reduce((n, s) => n + (s.bytes_to_peers ?? 0), 0) / shared.size
    all.notes = `MB/s per node (slowest); finish s: ${times.map((t, i) => `${nodes[i]?.name ?? i} ${t.wallS.toFixed(1)}`).join(', ')}; ` +
      `bytes_from_peers ÷ size: ${peers.map(p => p.toFixed(2)).join(', ')} (sent to peers, all nodes: ${sent.toFixed(2)}); CPU s (system): ${cpuS.map((c, i) => `${c.toFixed(1)} (${(sysS[i] ?? 0).toFixed(1)})`).join(', ')}`
    all.pass = all.ratio <= 1.3 && all.upstreamRatio <= 1.1
  } finally {
    await stopNodes(ctx, 'swarm', nodes)
  }
}

export const swarmScenario: ClusterScenario = { id: 'swarm', blobs: ['swarm-alone', 'swarm-shared'], run }
