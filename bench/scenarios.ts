import { createHash } from 'node:crypto'
import { download } from './client.ts'
import type { Download } from './client.ts'
import { MB, check, expectedSha, limitFor, vsBaseline } from './context.ts'
import type { BenchContext, Row } from './context.ts'
import type { BenchOptions } from './args.ts'
import { curlGet, findCurl } from './curl.ts'
import { killResume } from './kill-resume.ts'

/** A scenario fills in its row; run.ts adds peak RSS and turns a throw into a loud failure. */
export type Scenario = (ctx: BenchContext, row: Row) => Promise<void>

const GOAL_TTFB_S = 0.5
const GOAL_RSS_MIB = 120

/** One connection straight to the throttled upstream: checks the fixture itself. */
export const direct: Scenario = async (ctx, row) => {
  const { opts, files: { big } } = ctx
  const n = opts.directBytes
  const d = await download(`${ctx.upstream.url}${big.path}`, { headers: { Range: `bytes=0-${n - 1}` }, timeoutMs: opts.timeoutMs })
  check('direct', d, 206, n, d.sha256, expectedSha(big, 0, n - 1))
  row.mbps = n / MB / (d.totalMs / 1000)
  row.ttfbS = d.ttfbMs / 1000
  row.timeS = d.totalMs / 1000
  row.ratio = row.mbps * MB / opts.perConn
  row.ratioOf = '× per-conn limit'
  row.goal = '≈ 1 (0.95–1.05)'
  row.pass = row.ratio >= 0.95 && row.ratio <= 1.05
  row.notes = `${(n / MB).toFixed(0)} MB, 1 connection, no node`
}

/** `conns` Range connections straight to upstream: what a perfect parallel fetch reaches. */
export const ideal: Scenario = async (ctx, row) => {
  const { opts, files: { big } } = ctx
  const part = Math.ceil(big.size / opts.conns)
  const ranges = Array.from({ length: Math.ceil(big.size / part) }, (_, i) => [i * part, Math.min(big.size, (i + 1) * part) - 1] as const)
  const t0 = performance.now()
  const ds = await Promise.all(ranges.map(async ([a, b]) =>
    await download(`${ctx.upstream.url}${big.path}`, { headers: { Range: `bytes=${a}-${b}` }, timeoutMs: opts.timeoutMs })))
  const ms = performance.now() - t0
  ds.forEach((d, i) => {
    const [a, b] = ranges[i] as readonly [number, number]
    check(`range ${a}-${b}`, d, 206, b - a + 1, d.sha256, expectedSha(big, a, b))
  })
  row.mbps = big.size / MB / (ms / 1000)
  row.timeS = ms / 1000
  row.ratio = row.mbps * MB / limitFor(opts)
  row.ratioOf = '× limit'
  row.goal = '≈ 1 (≥ 0.95)'
  row.pass = row.ratio >= 0.95
  row.notes = `${ranges.length} Range connections, no node`
  ctx.measured.idealMbps = row.mbps
}

/** One client, a file the node has never seen. */
export const cold: Scenario = async (ctx, row) => {
  const { opts, files: { big } } = ctx
  const d = await download(`${ctx.node.url}${big.path}`, { timeoutMs: opts.timeoutMs })
  check('cold', d, 200, big.size, d.sha256, ctx.sha(big))
  row.mbps = big.size / MB / (d.totalMs / 1000)
  row.ttfbS = d.ttfbMs / 1000
  row.timeS = d.totalMs / 1000
  row.upstreamRatio = (await ctx.upstream.stats()).byPath[big.path]?.bytes ?? 0
  row.upstreamRatio /= big.size
  row.ratio = row.mbps * MB / limitFor(opts)
  row.ratioOf = '× limit'
  row.goal = `≥ 0.9 (${(0.9 * limitFor(opts) / MB).toFixed(0)} MB/s), TTFB ≤ ${GOAL_TTFB_S} s`
  row.pass = row.ratio >= 0.9 && row.ttfbS <= GOAL_TTFB_S
  row.notes = `limit = min(aggregate, ${opts.conns} × per-conn) = ${(limitFor(opts) / MB).toFixed(0)} MB/s${vsBaseline(ctx, row.mbps)}`
}

/**
 * The same file again, now cached, against nginx sending the same bytes from disk. Timed with curl
 * (body to /dev/null) so the server is measured, not the bench's hashing client; each is read five
 * times, interleaved, and the medians count. One more read through the node checks the bytes.
 * Without curl the bench's own client times it (best of three).
 */
export const warm: Scenario = async (ctx, row) => {
  const { opts, files: { big } } = ctx
  const verify = await download(`${ctx.node.url}${big.path}`, { timeoutMs: opts.timeoutMs })
  check('warm', verify, 200, big.size, verify.sha256, ctx.sha(big))
  const curl = findCurl()
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
  let nodeS: number
  let nginxS: number | null = null
  let how: string
  if (curl !== null) {
    const rounds = 5
    const nodeTimes: number[] = []
    const nginxTimes: number[] = []
    for (let i = 0; i < rounds; i++) {
      if (ctx.nginx !== null) {
        const n = await curlGet(curl, `${ctx.nginx.url}${big.path}`, opts.timeoutMs)
        if (n.status !== 200 || n.bytes !== big.size) throw new Error(`nginx: HTTP ${n.status}, ${n.bytes} bytes`)
        nginxTimes.push(n.totalS)
      }
      const d = await curlGet(curl, `${ctx.node.url}${big.path}`, opts.timeoutMs)
      if (d.status !== 200 || d.bytes !== big.size) throw new Error(`warm: HTTP ${d.status}, ${d.bytes} bytes`)
      nodeTimes.push(d.totalS)
    }
    nodeS = median(nodeTimes)
    if (nginxTimes.length > 0) nginxS = median(nginxTimes)
    how = `curl, median of ${rounds}; bytes verified once`
    row.ttfbS = verify.ttfbMs / 1000
  } else {
    let best = verify
    let nginxBest: Download | null = null
    for (let i = 0; i < 3; i++) {
      if (ctx.nginx !== null) {
        const n = await download(`${ctx.nginx.url}${big.path}`, { timeoutMs: opts.timeoutMs })
        check('nginx', n, 200, big.size, n.sha256, ctx.sha(big))
        if (nginxBest === null || n.totalMs < nginxBest.totalMs) nginxBest = n
      }
      const d = await download(`${ctx.node.url}${big.path}`, { timeoutMs: opts.timeoutMs })
      check('warm', d, 200, big.size, d.sha256, ctx.sha(big))
      if (d.totalMs < best.totalMs) best = d
    }
    nodeS = best.totalMs / 1000
    if (nginxBest !== null) nginxS = nginxBest.totalMs / 1000
    how = 'bench client (no curl), best of 3'
    row.ttfbS = best.ttfbMs / 1000
  }
  row.mbps = big.size / MB / nodeS
  row.timeS = nodeS
  row.upstreamRatio = ((await ctx.upstream.stats()).byPath[big.path]?.bytes ?? 0) / big.size
  row.goal = '≥ 0.7 × nginx'
  if (nginxS === null) {
    row.notes = `${how}; n/a (nginx not installed)`
    return
  }
  const nginxMbps = big.size / MB / nginxS
  row.ratio = row.mbps / nginxMbps
  row.ratioOf = '× nginx'
  row.pass = row.ratio >= 0.7
  row.notes = `${how}; nginx sendfile: ${nginxMbps.toFixed(0)} MB/s`
}

/** `clients` clients on one cold file at once: one upstream download, everyone served early. */
export const shared: Scenario = async (ctx, row) => {
  const { opts, files: { shared: file } } = ctx
  const t0 = performance.now()
  const ds = await Promise.all(Array.from({ length: opts.clients }, async () =>
    await download(`${ctx.node.url}${file.path}`, { timeoutMs: opts.timeoutMs })))
  const ms = performance.now() - t0
  ds.forEach((d, i) => { check(`client ${i + 1}`, d, 200, file.size, d.sha256, ctx.sha(file)) })
  row.ttfbS = Math.max(...ds.map((d) => d.ttfbMs)) / 1000
  row.timeS = ms / 1000
  row.mbps = file.size / MB / row.timeS
  row.upstreamRatio = ((await ctx.upstream.stats()).byPath[file.path]?.bytes ?? 0) / file.size
  row.ratio = row.upstreamRatio
  row.ratioOf = 'upstream ÷ size'
  row.goal = `≤ 1.02, max TTFB ≤ ${GOAL_TTFB_S} s`
  row.pass = row.upstreamRatio <= 1.02 && row.ttfbS <= GOAL_TTFB_S
  row.notes = `${opts.clients} clients; TTFB is the slowest client's; MB/s per client`
}

/** A client reads half, drops the connection, and resumes with `Range: bytes=N-`. */
export const resume: Scenario = async (ctx, row) => {
  const { opts, files: { resume: file } } = ctx
  const half = Math.floor(file.size / 2)
  const hash = createHash('sha256')
  const t0 = performance.now()
  const first = await download(`${ctx.node.url}${file.path}`, { hash, stopAfter: half, timeoutMs: opts.timeoutMs })
  if (first.error !== 'stopped' || first.status !== 200) throw new Error(`first half: HTTP ${first.status}, ${first.error ?? 'ended'} after ${first.bytes} bytes`)
  const second = await download(`${ctx.node.url}${file.path}`, { hash, headers: { Range: `bytes=${half}-` }, timeoutMs: opts.timeoutMs })
  const ms = performance.now() - t0
  const range = String(second.headers['content-range'] ?? '')
  if (second.status === 206 && !range.startsWith(`bytes ${half}-`)) throw new Error(`resume: Content-Range "${range}" does not start at ${half}`)
  check('resume', second, 206, file.size - half, hash.digest('hex'), ctx.sha(file))
  row.ttfbS = second.ttfbMs / 1000
  row.timeS = ms / 1000
  row.mbps = file.size / MB / row.timeS
  row.upstreamRatio = ((await ctx.upstream.stats()).byPath[file.path]?.bytes ?? 0) / file.size
  row.ratio = row.mbps * MB / limitFor(opts)
  row.ratioOf = '× limit'
  row.goal = `206 from N, bytes ok, upstream ≤ 1.02`
  row.pass = row.upstreamRatio <= 1.02
  row.notes = `resumed at ${half}; 2nd request took ${(second.totalMs / 1000).toFixed(2)} s`
}

/** Many different cold files at once: the aggregate limit should be the only bound. */
export const multi: Scenario = async (ctx, row) => {
  const { opts, files: { multi: files } } = ctx
  const t0 = performance.now()
  const ds = await Promise.all(files.map(async (f) => await download(`${ctx.node.url}${f.path}`, { timeoutMs: opts.timeoutMs })))
  const ms = performance.now() - t0
  ds.forEach((d, i) => {
    const f = files[i]
    if (f !== undefined) check(f.path, d, 200, f.size, d.sha256, ctx.sha(f))
  })
  const total = files.reduce((a, f) => a + f.size, 0)
  const stats = await ctx.upstream.stats()
  row.timeS = ms / 1000
  row.mbps = total / MB / row.timeS
  row.ttfbS = Math.max(...ds.map((d) => d.ttfbMs)) / 1000
  row.upstreamRatio = files.reduce((a, f) => a + (stats.byPath[f.path]?.bytes ?? 0), 0) / total
  const limit = limitFor(opts, files.length)
  row.ratio = row.mbps * MB / limit
  row.ratioOf = '× limit'
  row.goal = `≥ 0.9 (${(0.9 * limit / MB).toFixed(0)} MB/s)`
  row.pass = row.ratio >= 0.9
  row.notes = `${files.length} files × ${(files[0]?.size ?? 0) / 2 ** 20} MiB${vsBaseline(ctx, row.mbps)}`
}

export interface ScenarioDef {
  id: string
  name: (o: BenchOptions) => string
  run: Scenario
  /** Whether the node is involved (its peak RSS is then judged). */
  usesNode: boolean
}

export const SCENARIOS: readonly ScenarioDef[] = [
  { id: 'direct', name: () => 'baseline: 1 conn direct', run: direct, usesNode: false },
  { id: 'ideal', name: (o) => `baseline: ${o.conns} conns direct`, run: ideal, usesNode: false },
  { id: 'cold', name: () => 'cold, 1 client', run: cold, usesNode: true },
  { id: 'warm', name: () => 'warm, 1 client', run: warm, usesNode: true },
  { id: 'shared', name: (o) => `${o.clients} clients, 1 cold file`, run: shared, usesNode: true },
  { id: 'resume', name: () => 'range resume', run: resume, usesNode: true },
  { id: 'multi', name: (o) => `${o.files} files at once`, run: multi, usesNode: true },
  // Last: it replaces the node process.
  { id: 'kill', name: () => 'kill -9 mid-download, restart', run: killResume, usesNode: false }
]

export { GOAL_RSS_MIB }
