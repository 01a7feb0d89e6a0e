import { parseArgs } from 'node:util'

/** What one bench run measures; every field can come from a flag or a BENCH_* variable. */
export interface BenchOptions {
  /** Size of the big file (cold, warm, 8 clients, resume). */
  size: number
  /** Upstream per-connection limit, bytes/s. */
  perConn: number
  /** Upstream limit across all connections, bytes/s. */
  aggregate: number
  /** The bench rule's `concurrency`. */
  conns: number
  /** Upstream latency before headers, ms. */
  latencyMs: number
  /** Clients sharing one cold file. */
  clients: number
  /** Different files fetched at once, and the size of each. */
  files: number
  fileSize: number
  /** Bytes the single direct connection reads (it would take minutes for a whole GiB at 4 MB/s). */
  directBytes: number
  /** Per-download deadline. */
  timeoutMs: number
  /** Scenario ids to run (all when empty). */
  only: string[]
  /** Keep the temp dir (configs, logs, cache) for inspection. */
  keep: boolean
}

export const USAGE = `npm run bench -- [options]
  --quick              64 MiB file instead of 1 GiB (fast smoke run)
  --size SIZE          big file size (default 1GiB; env BENCH_SIZE)
  --per-conn RATE      upstream limit per connection (default 4MB, per second; env BENCH_PER_CONN)
  --aggregate RATE     upstream limit over all connections (default 200MB; env BENCH_AGGREGATE)
  --conns N            rule concurrency (default 64; env BENCH_CONNS)
  --latency-ms N       upstream delay before headers (default 20; env BENCH_LATENCY_MS)
  --clients N          clients on one cold file (default 8; env BENCH_CLIENTS)
  --files N            different files at once (default 16; env BENCH_FILES)
  --file-size SIZE     size of each of those (default size/files; env BENCH_FILE_SIZE)
  --timeout-s N        per-download deadline (default: 1.5 x size / per-conn + 30)
  --only a,b           run only these scenarios: direct,ideal,cold,warm,shared,resume,multi,kill
  --keep               keep the temp dir
Sizes and rates take B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).`

const UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, k: 1024, m: 1024 ** 2, g: 1024 ** 3
}

/** "64MiB" → 67108864, "4MB" → 4000000, "4MB/s" likewise; plain numbers are bytes. */
export function parseSize (text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)(?:\/s)?\s*$/i.exec(text)
  const unit = m === null ? undefined : UNITS[(m[2] ?? '').toLowerCase()]
  if (m === null || unit === undefined) throw new Error(`expected a size like 64MiB or 4MB, got "${text}"`)
  return Math.round(Number(m[1]) * unit)
}

function int (text: string, name: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a non-negative integer, got "${text}"`)
  return n
}

export function parseBenchArgs (argv: string[], env: Record<string, string | undefined>): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      size: { type: 'string' },
      'per-conn': { type: 'string' },
      aggregate: { type: 'string' },
      conns: { type: 'string' },
      'latency-ms': { type: 'string' },
      clients: { type: 'string' },
      files: { type: 'string' },
      'file-size': { type: 'string' },
      'timeout-s': { type: 'string' },
      only: { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) return 'help'
  const pick = (flag: string | undefined, name: string): string | undefined => flag ?? env[`BENCH_${name}`]
  const quick = values.quick === true || env.BENCH_QUICK === '1'
  const size = parseSize(pick(values.size, 'SIZE') ?? (quick ? '64MiB' : '1GiB'))
  const perConn = parseSize(pick(values['per-conn'], 'PER_CONN') ?? '4MB')
  const aggregate = parseSize(pick(values.aggregate, 'AGGREGATE') ?? '200MB')
  const files = int(pick(values.files, 'FILES') ?? '16', 'files')
  const fileSizeText = pick(values['file-size'], 'FILE_SIZE')
  const timeoutText = pick(values['timeout-s'], 'TIMEOUT_S')
  return {
    size,
    perConn,
    aggregate,
    conns: Math.max(1, int(pick(values.conns, 'CONNS') ?? '64', 'conns')),
    latencyMs: int(pick(values['latency-ms'], 'LATENCY_MS') ?? '20', 'latency-ms'),
    clients: Math.max(1, int(pick(values.clients, 'CLIENTS') ?? '8', 'clients')),
    files: Math.max(1, files),
    fileSize: fileSizeText !== undefined ? parseSize(fileSizeText) : Math.max(1024 * 1024, Math.floor(size / Math.max(1, files))),
    directBytes: Math.min(size, Math.round(perConn * 5)),
    timeoutMs: (timeoutText !== undefined ? int(timeoutText, 'timeout-s') : Math.ceil(1.5 * size / perConn + 30)) * 1000,
    only: (values.only ?? env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''),
    keep: values.keep === true
  }
}
