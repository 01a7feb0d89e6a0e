import { curlIn } from './cluster-nodes.ts'
import type { CurlTiming, LanNode } from './cluster-nodes.ts'
import { clusterRow } from './cluster-report.ts'
import type { ClusterRow } from './cluster-report.ts'
import { blobUrl, expectBody, tokenFor, mbps, sampled, startNodes, stopNodes, upstreamBlob, upstreamBytes } from './cluster-scenario.ts'
import type { ClusterContext, ClusterScenario } from './cluster-scenario.ts'

const RUNS = 2

/**
 * Goal 3: a cold miss no peer has costs ≤ 5 % over the same node with the cluster off. Node A (cluster
 * on, every other node a member that says "no") and node E (same config, cluster off) each fetch
 * RUNS different cold blobs of the same size, interleaved; the best run of each is compared.
 */
async function run (ctx: ClusterContext, rows: ClusterRow[]): Promise<void> {
  const on = clusterRow('miss-on', 'cold miss, cluster on (no peer has it)')
  const off = clusterRow('miss-off', 'cold miss, cluster off (same config)')
  on.ratioOf = 'time ÷ cluster off'
  on.goal = '≤ 1.05'
  off.ratioOf = 'baseline'
  rows.push(off, on)
  const count = Math.max(2, ctx.opts.nodes)
  const nodes = await startNodes(ctx, 'miss', count, 1)
  try {
    const A = nodes[0] as LanNode
    const E = nodes[count] as LanNode
    const onRuns: CurlTiming[] = []
    const offRuns: CurlTiming[] = []
    let upOn = 0
    let upOff = 0
    let rssOn = 0
    let rssOff = 0
    for (let i = 1; i <= RUNS; i++) {
      for (const [node, name, runs] of [[A, `miss-on-${i}`, onRuns], [E, `miss-off-${i}`, offRuns]] as const) {
        const b = upstreamBlob(ctx, name)
        ctx.log(`miss: ${node.name} (cluster ${node.cluster ? 'on' : 'off'}) run ${i}`)
        const url = blobUrl(ctx, b)
        const token = await tokenFor(ctx, node.host.ns, url)
        const before = await upstreamBytes(ctx, name)
        const { value: t, rssMiB } = await sampled([node], async () => await curlIn(ctx.lan, node.host.ns, url, ctx.timeoutMs, { token }))
        expectBody(`${node.name} run ${i}`, t, b.size)
        runs.push(t)
        const up = (await upstreamBytes(ctx, name) - before) / b.size
        if (node.cluster) { upOn = Math.max(upOn, up); rssOn = Math.max(rssOn, rssMiB) } else { upOff = Math.max(upOff, up); rssOff = Math.max(rssOff, rssMiB) }
      }
    }
    const size = upstreamBlob(ctx, 'miss-on-1').size
    const fill = (row: ClusterRow, runs: CurlTiming[], up: number, rss: number): number => {
      const best = Math.min(...runs.map(t => t.totalS))
      row.timeS = best
      row.mbps = mbps(size, best)
      row.upstreamRatio = up
      row.rssMiB = rss
      row.notes = `best of ${runs.length}: ${runs.map(t => t.totalS.toFixed(2)).join(', ')} s; TTFB ${runs.map(t => t.ttfbS.toFixed(2)).join(', ')} s`
      return best
    }
    const bestOff = fill(off, offRuns, upOff, rssOff)
    const bestOn = fill(on, onRuns, upOn, rssOn)
    off.ratio = 1
    on.ratio = bestOn / bestOff
    on.pass = on.ratio <= 1.05
  } finally {
    await stopNodes(ctx, 'miss', nodes)
  }
}

export const missScenario: ClusterScenario = {
  id: 'miss',
  blobs: Array.from({ length: RUNS }, (_, i) => [`miss-on-${i + 1}`, `miss-off-${i + 1}`]).flat(),
  run
}
