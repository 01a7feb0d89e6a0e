import { createHash } from 'node:crypto'
import { GeneratedContent } from '../test/fixtures/upstreams/file-server-content.ts'
import type { BenchOptions } from './args.ts'
import type { BenchFile, Upstream } from './upstream.ts'
import type { NodeUnderTest } from './node-under-test.ts'
import type { Nginx } from './nginx.ts'
import type { Download } from './client.ts'

/** Everything a scenario needs; built once by run.ts. */
export interface BenchContext {
  opts: BenchOptions
  upstream: Upstream
  /** The node under test (a new process after `restartNode`). */
  node: NodeUnderTest
  /** Starts the node again on the same config and cache (after it was killed); updates `node`. */
  restartNode: () => Promise<void>
  /** null when nginx is not installed. */
  nginx: Nginx | null
  files: {
    big: BenchFile
    shared: BenchFile
    resume: BenchFile
    kill: BenchFile
    multi: BenchFile[]
  }
  /** Expected sha256 of a whole bench file (memoised; call it outside timed sections). */
  sha: (file: BenchFile) => string
  /** MB/s of the N-conns direct baseline of this run (the machine's reach today), once measured. */
  measured: { idealMbps: number | null }
}

/** " (0.93 × same-run baseline)" for a throughput row, when the baseline ran. */
export function vsBaseline (ctx: BenchContext, mbps: number, files = 1): string {
  const ideal = ctx.measured.idealMbps
  if (ideal === null) return ''
  // The baseline already runs into the aggregate limit (or the machine): it bounds N files too.
  const reach = Math.min(ideal, limitFor(ctx.opts, files) / MB)
  return `; ${(mbps / reach).toFixed(2)} × same-run baseline (${reach.toFixed(0)} MB/s)`
}

/** One line of the result table. Raw numbers stay raw (MB = 10^6 bytes, like the goals). */
export interface Row {
  id: string
  name: string
  /** The headline ratio of this scenario (null when it could not be computed). */
  ratio: number | null
  /** What the ratio is relative to, e.g. "× limit". */
  ratioOf: string
  goal: string
  /** null: no goal applies or it could not be judged. */
  pass: boolean | null
  mbps: number | null
  ttfbS: number | null
  timeS: number | null
  /** Upstream body bytes for the scenario's file(s) ÷ their size. */
  upstreamRatio: number | null
  /** Peak RSS of the node process during the scenario. */
  rssMiB: number | null
  notes: string
  /** Set when the scenario failed (wrong bytes, timeout, crash). */
  error: string | null
}

export const MB = 1e6

export function emptyRow (id: string, name: string): Row {
  return { id, name, ratio: null, ratioOf: '', goal: '', pass: null, mbps: null, ttfbS: null, timeS: null, upstreamRatio: null, rssMiB: null, notes: '', error: null }
}

/** The upstream throughput a perfect mirror could reach with `files` files at once. */
export function limitFor (opts: BenchOptions, files = 1): number {
  const perConnTotal = files * opts.conns * opts.perConn
  return opts.aggregate > 0 ? Math.min(opts.aggregate, perConnTotal) : perConnTotal
}

/** Expected sha256 of bytes [start, end] of a bench file. */
export function expectedSha (file: BenchFile, start = 0, end = file.size - 1): string {
  const hash = createHash('sha256')
  for (const chunk of new GeneratedContent(file.size, file.seed).chunks(start, end, 1024 * 1024)) hash.update(chunk)
  return hash.digest('hex')
}

/** Throws (failing the scenario loudly) unless the download completed with the expected bytes. */
export function check (what: string, d: Download, status: number, bytes: number, sha: string | null, want: string): void {
  if (d.error !== null) throw new Error(`${what}: ${d.error} after ${d.bytes} bytes (HTTP ${d.status})`)
  if (d.status !== status) throw new Error(`${what}: HTTP ${d.status}, expected ${status}`)
  if (d.bytes !== bytes) throw new Error(`${what}: ${d.bytes} bytes, expected ${bytes}`)
  if (sha !== want) throw new Error(`${what}: sha256 mismatch (got ${sha ?? 'none'}, expected ${want})`)
}
