import { setTimeout as sleep } from 'node:timers/promises'
import { curlIn } from './cluster-nodes.ts'
import type { LanNode } from './cluster-nodes.ts'
import { clusterRow } from './cluster-report.ts'
import type { ClusterRow } from './cluster-report.ts'
import { blobUrl, expectBody, mbps, sampled, startNodes, stopNodes, tokenFor, upstreamBlob, upstreamBytes } from './cluster-scenario.ts'
import type { ClusterContext, ClusterScenario } from './cluster-scenario.ts'

/** How far into the shared download the fault comes, in seconds. */
const FAULT_AT_S = 3

/**
 * Every node asks for the same cold blob at once, and one of them fails part-way: frozen (SIGSTOP, its
 * sockets stay open and silent) or killed (SIGKILL). The others must still get the right bytes, and the
 * upstream should carry the blob not much more than once: the failed node's share is fetched again, but
 * by one survivor, not by each of them.
 */
async function faulted (ctx: ClusterContext, rows: ClusterRow[], signal: 'SIGSTOP' | 'SIGKILL'): Promise<void> {
  const what = signal === 'SIGSTOP' ? 'frozen' : 'killed'
  const blob = upstreamBlob(ctx, `fault-${what}`)
  const row = clusterRow(`fault-${what}`, `${ctx.opts.nodes} nodes, same cold blob, one ${what} at ${FAULT_AT_S} s`)
  row.ratioOf = 'upstream bytes ÷ size'
  row.goal = 'survivors complete, right bytes'
  rows.push(row)
  const nodes = await startNodes(ctx, `fault-${what}`, ctx.opts.nodes)
  const victim = nodes.at(-1) as LanNode
  const survivors = nodes.slice(0, -1)
  try {
    const url = blobUrl(ctx, blob)
    const tokens = await Promise.all(nodes.map(async n => await tokenFor(ctx, n.host.ns, url)))
    const before = await upstreamBytes(ctx, `fault-${what}`)
    const t0 = performance.now()
    // The victim's own client fails with it: nothing to check there.
    const victimDone = curlIn(ctx.lan, victim.host.ns, url, ctx.timeoutMs, { token: tokens.at(-1) ?? null, t0 }).catch(() => null)
    const fault = sleep(FAULT_AT_S * 1000).then(() => { victim.child.kill(signal) })
    const { value: times, rssMiB, cpuS } = await sampled(survivors, async () => await Promise.all(survivors.map(async (n, i) =>
      await curlIn(ctx.lan, n.host.ns, url, ctx.timeoutMs, { token: tokens[i] ?? null, t0 }))))
    await fault
    const fromUpstream = await upstreamBytes(ctx, `fault-${what}`) - before
    for (const [i, t] of times.entries()) expectBody(`node ${survivors[i]?.name ?? i}`, t, blob.size)
    // A stopped process still holds its client's connection: end it now.
    victim.child.kill('SIGKILL')
    await victimDone
    const last = Math.max(...times.map(t => t.wallS))
    row.ratio = fromUpstream / blob.size
    row.upstreamRatio = row.ratio
    row.timeS = last
    row.mbps = mbps(blob.size, last)
    row.rssMiB = rssMiB
    row.pass = true
    row.notes = `finish s: ${times.map((t, i) => `${survivors[i]?.name ?? i} ${t.wallS.toFixed(1)}`).join(', ')}; ` +
      `CPU s: ${cpuS.map(c => c.toFixed(1)).join(', ')}`
  } finally {
    victim.child.kill('SIGKILL')
    await stopNodes(ctx, `fault-${what}`, nodes)
  }
}

async function run (ctx: ClusterContext, rows: ClusterRow[]): Promise<void> {
  await faulted(ctx, rows, 'SIGSTOP')
  await faulted(ctx, rows, 'SIGKILL')
}

export const faultScenario: ClusterScenario = { id: 'fault', blobs: ['fault-frozen', 'fault-killed'], run }
