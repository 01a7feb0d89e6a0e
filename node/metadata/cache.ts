import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createGzip } from 'node:zlib'
import type { Dispatcher } from 'undici'
import { ShuttingDownError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { MetadataStore } from './store.ts'
import type { StoredEntry } from './store.ts'
import type { MetadataBody, MetadataInfo, MetadataRequest, MetadataResult, MetadataRewrite } from './types.ts'
import { exchange, infoOf } from './upstream-fetch.ts'
import type { UpstreamOutcome } from './upstream-fetch.ts'
import { waitFor } from '../abort.ts'
import { AwayOrigins } from '../upstream/away.ts'

export interface MetadataCacheComponents {
  dispatcher: Dispatcher
  logger: Logger
  /** Origins that just failed to answer: their cached documents are served without the grace wait. */
  away?: AwayOrigins
}

export interface MetadataCacheInit {
  /** Directory of the metadata cache (bodies and index), e.g. `<cache.dir>/metadata`. */
  dir: string
  /** With a cached copy at hand, wait this long for upstream before answering stale. Default 5 s. */
  staleGraceMs?: number
  /** Upper bound of one upstream exchange (all bytes; stalls are cut sooner by the pool read timeout). Default 10 min. */
  requestTimeoutMs?: number
  /** Largest body a whole-body rewrite reads into memory; bigger ones are served unrewritten. Default 64 MiB. */
  maxRewriteBytes?: number
  /** How long a replaced body stays readable. Default 60 s. */
  bodyGraceMs?: number
  /** Bytes of documents kept at most (least recently used go first). Default: no bound. */
  maxBytes?: number
  /** Hints kept at most (cleared past it, and learned again). Default: no bound. */
  maxHints?: number
}

export const STALE_HEADERS: Readonly<Record<string, string>> = { warning: '110 - "Response is Stale"', 'x-aimirror-stale': '1' }

/**
 * How long a 404/410 is answered without asking again: a package published a moment after a miss must
 * be installable at once (npm sends no Cache-Control with an empty cache), while a burst of clients
 * asking together still costs one exchange. It is replayed longer while the upstream is away.
 */
const NEGATIVE_TTL_MS = 5_000

/** Statuses after which a cached copy is served instead (upstream trouble, not an answer about the document). */
function troubled (status: number): boolean {
  return status >= 500 || status === 429 || status === 408
}

function etagFor (sha256: string, variant: string): string {
  if (variant === '') return `"${sha256.slice(0, 32)}"`
  return `"${createHash('sha256').update(sha256 + '\n' + variant).digest('hex').slice(0, 32)}"`
}

function bufferBody (data: Buffer): MetadataBody {
  return {
    size: data.length,
    open: (start = 0, end = data.length) => Readable.from([data.subarray(start, end)]),
    read: async () => data
  }
}

async function applyInMemory (rewrite: MetadataRewrite, body: MetadataBody, info: MetadataInfo): Promise<Buffer> {
  if (!('stream' in rewrite)) return await rewrite.apply(await body.read(), info)
  const chunks: Buffer[] = []
  for await (const chunk of rewrite.stream(body, info)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** Where a cached result's bytes live: a body generation and the variant of it. */
interface Origin { entry: StoredEntry, variant: string }

/**
 * Carried on results as a symbol-keyed property, so copies a caller makes with different headers
 * (`{ ...result, headers }`) still know their body.
 */
const ORIGIN = Symbol('metadata body origin')
type WithOrigin = MetadataResult & { [ORIGIN]?: Origin }

function originOf (result: MetadataResult): Origin | undefined {
  return (result as WithOrigin)[ORIGIN]
}

function withOrigin (result: MetadataResult, origin: Origin): MetadataResult {
  Object.defineProperty(result, ORIGIN, { value: origin, enumerable: true })
  return result
}

/**
 * The shared metadata cache: per-key freshness (caller's TTL), conditional revalidation upstream
 * (If-None-Match / If-Modified-Since, 304 refreshes), one upstream exchange per key at a time, stale
 * answers (with `Warning: 110` and `X-Aimirror-Stale: 1`) when upstream is unreachable, failing, slow or
 * times out, real 404/410 answers remembered and replayed. A 404 is never made up: with nothing cached
 * and upstream down, the caller gets the catalogue error (502/504). Bodies live on disk; rewritten and
 * gzip variants are derived once per body and cached beside it, each with its own ETag.
 */
export class MetadataCache {
  readonly store: MetadataStore
  private readonly dispatcher: Dispatcher
  private readonly log: Logger
  private readonly staleGraceMs: number
  private readonly requestTimeoutMs: number
  private readonly maxRewriteBytes: number
  /** Upstream origins that just failed to answer; shared with the handlers that keep their own records. */
  readonly away: AwayOrigins
  private readonly inflight = new Map<string, Promise<UpstreamOutcome>>()
  private readonly deriving = new Map<string, Promise<string>>()
  private stopper = new AbortController()
  private started = false
  private opening: Promise<void> | null = null

  constructor (components: MetadataCacheComponents, init: MetadataCacheInit) {
    this.dispatcher = components.dispatcher
    this.log = components.logger.child({ component: 'metadata' })
    this.store = new MetadataStore({ logger: this.log }, { dir: init.dir, graceMs: init.bodyGraceMs, maxBytes: init.maxBytes, maxHints: init.maxHints })
    this.staleGraceMs = init.staleGraceMs ?? 5000
    this.requestTimeoutMs = init.requestTimeoutMs ?? 600_000
    this.maxRewriteBytes = init.maxRewriteBytes ?? 64 << 20
    this.away = components.away ?? new AwayOrigins({ logger: this.log })
  }

  /** Idempotent. The disk side opens on first use, so a node that serves no metadata never touches it. */
  async start (): Promise<void> {
    if (this.started) return
    this.stopper = new AbortController()
    this.started = true
  }

  /** Aborts upstream exchanges in flight, waits for them, closes the index. */
  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopper.abort(new ShuttingDownError())
    await Promise.allSettled([...this.inflight.values(), ...this.deriving.values()])
    const opening = this.opening
    this.opening = null
    if (opening !== null && await opening.then(() => true, () => false)) await this.store.stop()
  }

  /**
   * Remembers facts learned from documents (e.g. a file's path -> the digest its index published), so
   * they survive restarts. Names should carry an ecosystem prefix (`pypi:`, `npm:`).
   */
  async remember (pairs: ReadonlyArray<readonly [string, string]>): Promise<void> {
    await this.open()
    await this.store.putHints(pairs)
  }

  async recall (name: string): Promise<string | undefined> {
    await this.open()
    return await this.store.getHint(name)
  }

  private async open (): Promise<void> {
    if (!this.started) throw new ShuttingDownError('Metadata cache is not running')
    this.opening ??= this.store.start().catch((err: unknown) => { this.opening = null; throw err })
    await this.opening
  }

  /**
   * The document for `req.key`: fresh from the cache, revalidated, fetched, or stale. Throws catalogue
   * errors (ERR_UPSTREAM_UNREACHABLE / _TIMEOUT / _PROTOCOL) only when nothing is cached.
   */
  async fetch (req: MetadataRequest): Promise<MetadataResult> {
    await this.open()
    const cached = await this.lookup(req.key)
    if (cached !== undefined && this.fresh(cached, req)) return this.fromEntry(cached, false, true)
    const flight = this.inflight.get(req.key) ?? this.startFlight(req, cached)
    if (cached === undefined) {
      // Away: another representation the client takes, at once; the exchange goes on for this one.
      const instead = this.away.isAway(req.url.origin) ? await this.alternate(req) : undefined
      if (instead !== undefined) return this.stale(instead, req, 'upstream away')
      const outcome = await waitFor(flight, req.signal)
      const unanswered = outcome.kind === 'failed' || (outcome.kind === 'live' && troubled(outcome.status))
      return this.settle(outcome, req, unanswered ? await this.alternate(req) : undefined)
    }
    // An upstream that just failed to answer is not waited for again: the copy now, the answer next time.
    if (this.away.isAway(req.url.origin)) return this.stale(cached, req, 'upstream away')
    let timer: NodeJS.Timeout | undefined
    const slow = new Promise<'slow'>(resolve => { timer = setTimeout(() => resolve('slow'), this.staleGraceMs) })
    try {
      const outcome = await waitFor(Promise.race([flight, slow]), req.signal)
      if (outcome === 'slow') {
        // Not answering within the grace time is being away for clients too (a line that is down takes
        // the connect timeout to say so); the exchange's answer, when it comes, ends that.
        this.away.noAnswer(req.url.origin, Date.now() - this.staleGraceMs)
        return this.stale(cached, req, 'upstream slow')
      }
      return this.settle(outcome, req, cached)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * `result` with `rewrite` applied, as a cached variant with its own ETag. Streaming rewrites take any
   * size; whole-body ones skip bodies over the rewrite cap (logged). Uncached (live) answers, small
   * error pages, are rewritten in memory.
   */
  async rewrite (result: MetadataResult, rewrite: MetadataRewrite): Promise<MetadataResult> {
    // A body in a coding the node does not know is kept as received, with its header: its bytes are not text.
    const coding = result.headers['content-encoding']
    if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') return result
    const origin = originOf(result)
    if (origin === undefined || result.info === null) {
      const body = await result.body.read()
      const info = { url: '', status: result.status, headers: result.headers, upstream: { etag: null, lastModified: null }, sha256: '', size: body.length, fetchedAt: Date.now() }
      const out: WithOrigin = { ...result, body: bufferBody(await applyInMemory(rewrite, bufferBody(body), info)) }
      delete out[ORIGIN]
      return out
    }
    const info = result.info
    let produce: () => Promise<Buffer | Readable>
    if ('stream' in rewrite) {
      produce = async () => Readable.from(rewrite.stream(result.body, info))
    } else if (result.body.size > this.maxRewriteBytes) {
      this.log.warn({ url: origin.entry.url, size: result.body.size, limit: this.maxRewriteBytes }, 'metadata body over the rewrite limit, served unrewritten')
      return result
    } else {
      produce = async () => await rewrite.apply(await result.body.read(), info)
    }
    // A rewrite learns the document's hints: derived again once they were cleared (MetadataStore.putHints).
    const id = `${rewrite.id}#${this.store.hintEpoch}`
    const variant = origin.variant === '' ? id : `${origin.variant}\n${id}`
    const path = await this.derive(origin.entry, variant, produce)
    return await this.variantResult(result, origin.entry, variant, path)
  }

  /** `result` gzip-encoded (for clients that accept gzip), cached beside its body; null for uncached answers. */
  async gzip (result: MetadataResult): Promise<MetadataResult | null> {
    const origin = originOf(result)
    if (origin === undefined) return null
    const variant = `${origin.variant}\ngzip`
    const path = await this.derive(origin.entry, variant, async () => result.body.open().pipe(createGzip()))
    return await this.variantResult(result, origin.entry, variant, path)
  }

  private async variantResult (result: MetadataResult, entry: StoredEntry, variant: string, path: string): Promise<MetadataResult> {
    const size = (await stat(path)).size
    return withOrigin({ ...result, etag: etagFor(entry.sha256, variant), body: this.fileBody(path, size) }, { entry, variant })
  }

  private async derive (entry: StoredEntry, variant: string, produce: () => Promise<Buffer | Readable>): Promise<string> {
    const path = this.store.variantPath(entry.gen, variant)
    if (await this.store.exists(path)) return path
    const running = this.deriving.get(path)
    if (running !== undefined) return await running
    const p = (async () => await this.store.writeVariant(entry.gen, variant, await produce()))()
      .finally(() => this.deriving.delete(path))
    this.deriving.set(path, p)
    return await p
  }

  private async lookup (key: string): Promise<StoredEntry | undefined> {
    const entry = await this.store.get(key)
    if (entry === undefined) return undefined
    if (await this.store.exists(this.store.bodyPath(entry.gen))) return entry
    this.log.warn({ key }, 'metadata body missing on disk; entry dropped')
    await this.store.delete(key, undefined)
    return undefined
  }

  private fresh (entry: StoredEntry, req: MetadataRequest): boolean {
    if (req.revalidate === true) return false
    const ttl = entry.status === 200 ? req.ttlMs : (req.negativeTtlMs ?? Math.min(req.ttlMs, NEGATIVE_TTL_MS))
    return Date.now() - entry.fetchedAt < ttl
  }

  private startFlight (req: MetadataRequest, cached: StoredEntry | undefined): Promise<UpstreamOutcome> {
    const signal = AbortSignal.any([this.stopper.signal, AbortSignal.timeout(this.requestTimeoutMs)])
    const askedAt = Date.now()
    const flight = (async (): Promise<UpstreamOutcome> => {
      const outcome = await exchange({ dispatcher: this.dispatcher, store: this.store }, req, cached, signal)
      if (outcome.kind !== 'failed') this.away.answered(req.url.origin)
      else if (!this.stopper.signal.aborted) this.away.failed(req.url.origin, outcome.error, askedAt)
      if (outcome.kind !== 'stored') return outcome
      try {
        await this.store.put(req.key, outcome.entry, cached)
      } catch (err) {
        if (outcome.entry.gen !== cached?.gen) await this.store.discard(outcome.entry.gen)
        this.log.error({ err, key: req.key }, 'metadata entry could not be stored')
        return { kind: 'failed', error: err }
      }
      return outcome
    })().finally(() => this.inflight.delete(req.key))
    this.inflight.set(req.key, flight)
    return flight
  }

  private settle (outcome: UpstreamOutcome, req: MetadataRequest, cached: StoredEntry | undefined): MetadataResult {
    if (outcome.kind === 'stored') return this.fromEntry(outcome.entry, false, false)
    if (outcome.kind === 'live') {
      if (cached !== undefined && troubled(outcome.status)) return this.stale(cached, req, `upstream status ${outcome.status}`)
      return {
        status: outcome.status,
        headers: outcome.headers,
        etag: null,
        lastModified: outcome.headers['last-modified'] ?? null,
        body: bufferBody(outcome.body),
        stale: false,
        fromCache: false,
        info: null
      }
    }
    if (cached !== undefined) return this.stale(cached, req, (outcome.error as { code?: string } | null)?.code ?? 'upstream failed')
    throw outcome.error
  }

  /** A cached document of another representation the client takes (see MetadataRequest.alternates). */
  private async alternate (req: MetadataRequest): Promise<StoredEntry | undefined> {
    for (const key of req.alternates ?? []) {
      const entry = await this.lookup(key)
      if (entry !== undefined && entry.status === 200) return entry
    }
    return undefined
  }

  private stale (entry: StoredEntry, req: MetadataRequest, reason: string): MetadataResult {
    this.log.warn({ key: req.key, url: entry.url, status: entry.status, reason, age_s: Math.round((Date.now() - entry.fetchedAt) / 1000) },
      'serving stale metadata')
    return this.fromEntry(entry, true, true)
  }

  private fromEntry (entry: StoredEntry, stale: boolean, fromCache: boolean): MetadataResult {
    const info: MetadataInfo = infoOf(entry)
    const result: MetadataResult = {
      status: entry.status,
      headers: stale ? { ...entry.headers, ...STALE_HEADERS } : entry.headers,
      etag: etagFor(entry.sha256, ''),
      lastModified: entry.validator.lastModified,
      body: this.fileBody(this.store.bodyPath(entry.gen), entry.size),
      stale,
      fromCache,
      info
    }
    return withOrigin(result, { entry, variant: '' })
  }

  private fileBody (path: string, size: number): MetadataBody {
    return {
      size,
      open: (start = 0, end = size) => this.store.openRange(path, start, end),
      read: async () => await readFile(path)
    }
  }
}

/** The metadata cache of a node, under `<cache dir>/metadata`. */
export function createMetadataCache (components: MetadataCacheComponents, init: Omit<MetadataCacheInit, 'dir'> & { cacheDir: string }): MetadataCache {
  const { cacheDir, ...rest } = init
  return new MetadataCache(components, { ...rest, dir: join(cacheDir, 'metadata') })
}
