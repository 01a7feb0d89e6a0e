import type { BenchContext, Row } from './context.ts'
import { MB, check } from './context.ts'
import { download } from './client.ts'

/** Share of the file the upstream has sent when the node is killed. */
const KILL_AT = 0.5

/**
 * `kill -9` in the middle of a cold download, restart, ask again: the file completes with the right
 * bytes, and the upstream sends again only what had not landed (recorded) before the kill. The bound
 * the goal sets is the pieces in flight at the kill; the row shows what was really fetched twice.
 */
export async function killResume (ctx: BenchContext, row: Row): Promise<void> {
  const { opts, files: { kill: file } } = ctx
  const url = (): string => `${ctx.node.url}${file.path}`
  const sentFor = async (): Promise<number> => (await ctx.upstream.stats()).byPath[file.path]?.bytes ?? 0
  const victim = ctx.node.child
  const first = download(url(), { timeoutMs: opts.timeoutMs })
  let sentAtKill = await sentFor()
  while (sentAtKill < file.size * KILL_AT) {
    await new Promise(resolve => setTimeout(resolve, 20))
    sentAtKill = await sentFor()
  }
  victim.kill('SIGKILL')
  const broken = await first
  if (broken.complete) throw new Error('the first download completed before the kill')
  await ctx.restartNode()
  const beforeRestart = await sentFor()
  const t0 = performance.now()
  const again = await download(url(), { timeoutMs: opts.timeoutMs })
  row.timeS = (performance.now() - t0) / 1000
  check('after restart', again, 200, file.size, again.sha256, ctx.sha(file))
  const sent = await sentFor()
  const refetched = sent - beforeRestart
  const missing = file.size - beforeRestart
  const piece = Math.min(64 << 20, Math.max(1 << 20, Math.ceil(file.size / opts.conns)))
  row.mbps = refetched / MB / row.timeS
  row.ttfbS = again.ttfbMs / 1000
  row.upstreamRatio = sent / file.size
  row.ratio = refetched / missing
  row.ratioOf = '× bytes the upstream had not sent'
  row.goal = `complete, bytes ok, fetched twice ≤ the pieces in flight (${opts.conns} × ${(piece / 2 ** 20).toFixed(0)} MiB)`
  row.pass = sent - file.size <= opts.conns * piece
  row.notes = `killed at ${(sentAtKill / 2 ** 20).toFixed(0)} MiB sent (the client had ${(broken.bytes / 2 ** 20).toFixed(0)} MiB); ` +
    `after the restart ${(refetched / 2 ** 20).toFixed(0)} MiB for the ${(missing / 2 ** 20).toFixed(0)} MiB never sent: ` +
    `${((sent - file.size) / 2 ** 20).toFixed(1)} MiB fetched twice`
}
