import type { Row } from './context.ts'
import type { BenchOptions } from './args.ts'
import { MB } from './context.ts'

const num = (v: number | null, digits = 2): string => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits))

function verdict (row: Row): string {
  if (row.error !== null) return '**FAIL**'
  if (row.pass === null) return '–'
  return row.pass ? 'yes' : '**no**'
}

/** The results as one markdown table, with the run's parameters above it and errors below. */
export function renderTable (rows: readonly Row[], opts: BenchOptions, rssGoalMiB: number): string {
  const head = [
    `aimirror bench: file ${(opts.size / 2 ** 20).toFixed(0)} MiB, upstream ${(opts.perConn / MB).toFixed(1)} MB/s per connection, ` +
    `${(opts.aggregate / MB).toFixed(0)} MB/s aggregate, ${opts.latencyMs} ms latency; rule concurrency ${opts.conns}`,
    '',
    '| scenario | ratio | of | goal | ok | MB/s | TTFB s | time s | upstream ÷ size | peak RSS MiB | notes |',
    '|---|---:|---|---|---|---:|---:|---:|---:|---:|---|'
  ]
  const lines = rows.map((r) => {
    const rss = r.rssMiB === null ? '–' : `${r.rssMiB.toFixed(0)}${r.rssMiB > rssGoalMiB ? ` (> ${rssGoalMiB})` : ''}`
    return `| ${r.name} | ${num(r.ratio)} | ${r.ratioOf} | ${r.goal} | ${verdict(r)} | ${num(r.mbps, 1)} | ${num(r.ttfbS)} | ${num(r.timeS)} | ${num(r.upstreamRatio, 3)} | ${rss} | ${r.notes} |`
  })
  const errors = rows.filter((r) => r.error !== null).map((r) => `- ${r.name}: ${r.error ?? ''}`)
  return [...head, ...lines, ...(errors.length > 0 ? ['', 'Failures:', ...errors] : [])].join('\n')
}
