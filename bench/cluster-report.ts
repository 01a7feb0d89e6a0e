/** MB = 10^6 bytes, like the goals. */
export const MB = 1e6

/** One line of the cluster bench's table. Raw numbers stay raw (MB = 10^6 bytes, like the goals). */
export interface ClusterRow {
  id: string
  name: string
  ratio: number | null
  ratioOf: string
  goal: string
  /** null: no goal applies, or it could not be judged. */
  pass: boolean | null
  mbps: number | null
  timeS: number | null
  /** Upstream body bytes for the row's blob(s) ÷ blob size. */
  upstreamRatio: number | null
  /** Highest peak RSS of the row's node processes. */
  rssMiB: number | null
  notes: string
  /** Wrong bytes, wrong status, timeout, crash. */
  error: string | null
}

export function clusterRow (id: string, name: string): ClusterRow {
  return { id, name, ratio: null, ratioOf: '', goal: '', pass: null, mbps: null, timeS: null, upstreamRatio: null, rssMiB: null, notes: '', error: null }
}

export interface ClusterBenchOptions {
  size: number
  perConn: number
  aggregate: number
  conns: number
  latencyMs: number
  nodes: number
  only: string[]
  keep: boolean
  /** HTTPS between the nodes. */
  tls: boolean
  /** No cluster key. */
  open: boolean
  /** Blobs asked for through a generic rule, keyed by URL. */
  byUrl: boolean
}

const num = (v: number | null, digits = 2): string => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits))

function verdict (row: ClusterRow): string {
  if (row.error !== null) return '**FAIL**'
  if (row.pass === null) return '–'
  return row.pass ? 'yes' : '**no**'
}

/** The results as one markdown table, the run's parameters above it and failures below. */
export function renderClusterTable (rows: readonly ClusterRow[], opts: ClusterBenchOptions, cpus: number): string {
  const head = [
    `aimirror cluster bench: blob ${(opts.size / 2 ** 20).toFixed(0)} MiB, ${opts.nodes} nodes in network namespaces on one bridge, ` +
    `upstream ${(opts.perConn / MB).toFixed(1)} MB/s per connection, ${(opts.aggregate / MB).toFixed(0)} MB/s aggregate, ` +
    `${opts.latencyMs} ms latency; rule concurrency ${opts.conns}; data port ${opts.tls ? 'HTTPS' : 'HTTP'}; ${opts.open ? 'open cluster (no key)' : 'cluster key'}${opts.byUrl ? '; blobs by URL (generic rule)' : ''}; ${cpus} CPU cores shared by every process`,
    '',
    '| scenario | ratio | of | goal | ok | MB/s | time s | upstream ÷ size | peak RSS MiB | notes |',
    '|---|---:|---|---|---|---:|---:|---:|---:|---|'
  ]
  const lines = rows.map((r) =>
    `| ${r.name} | ${num(r.ratio)} | ${r.ratioOf} | ${r.goal} | ${verdict(r)} | ${num(r.mbps, 1)} | ${num(r.timeS)} | ${num(r.upstreamRatio, 3)} | ${r.rssMiB === null ? '–' : r.rssMiB.toFixed(0)} | ${r.notes} |`)
  const errors = rows.filter((r) => r.error !== null).map((r) => `- ${r.name}: ${r.error ?? ''}`)
  return [...head, ...lines, ...(errors.length > 0 ? ['', 'Failures:', ...errors] : [])].join('\n')
}
