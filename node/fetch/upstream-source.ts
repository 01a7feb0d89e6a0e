import { setTimeout as sleep } from 'node:timers/promises'
import type { Dispatcher } from 'undici'
import type { RangeSockets } from '../upstream/range-sockets.ts'
import type { AwayOrigins } from '../upstream/away.ts'
import type { BrokenRanges } from './broken-ranges.ts'
import { AbortedError, isAimirrorError, UpstreamProtocolError, UpstreamTimeoutError, UpstreamUnreachableError } from '../errors.ts'

/**
 * Where a download's bytes come from: the upstream, or (with the cluster on) a source that spreads
 * ranges over peers and the upstream. A source may answer a range with fewer bytes than asked (a
 * shorter 206); the download asks again for the rest.
 */
export interface Source {
  readonly name: string
  /** GET [start, end] (inclusive); `null` asks for the whole file without Range. */
  fetch: (range: { start: number, end: number } | null, options: SourceFetchOptions) => Promise<SourceResponse>
  /**
   * Told when the whole blob failed its digest check (a source that passed unverified bytes may be at
   * fault). It may return the ranges peers sent that nobody vouched for: the download fetches those again
   * and names by `convict` the senders whose bytes were not the blob's; other senders it judges itself.
   */
  onDigestMismatch?: () => SuspectRange[] | undefined
  /** The senders of suspect ranges whose bytes differed from the ones fetched again (all, when that could not be told). */
  convict?: (peers: ReadonlySet<string>) => void
  /**
   * How many ranges to keep in flight, given the rule's `concurrency` (default: `concurrency`). A source
   * that takes some ranges from elsewhere may ask for more (peers downloading the same blob) or fewer (a
   * LAN peer serving from its page cache). Re-read as the download goes.
   */
  rangesInFlight?: (concurrency: number) => number
  /**
   * The largest piece the download plans when the rule's `chunk_size` leaves it to the engine (default
   * MAX_AUTO_PIECE), asked once, when the first response is in: a source whose ranges go to peers may
   * want its own unit.
   */
  maxAutoPiece?: () => number | undefined
  /**
   * Bytes this source serves in whole multiples of (a peer verifies and sends 1 MiB units: a range that
   * starts or ends inside one costs the whole unit). New ranges then start and end on such boundaries
   * where they can. With `offset`, for a range cut there (a source may serve parts of the blob from
   * elsewhere, in no units); without, for the download as a whole. Re-read as the download goes; default 1.
   */
  alignment?: (offset?: number) => number | undefined
  /**
   * Takes the blob's bytes in order as the download hashes them, and hears when they matched the
   * digest (before the commit): a cluster makes the blob's piece-hash list that way instead of reading
   * the blob back after it.
   */
  inOrder?: InOrderSink
  /** The download ended (done or failed): work the source keeps up for it in the background stops. */
  finished?: () => void
}

/** Bytes [start, end) of a download that a peer sent and nobody vouched for. */
export interface SuspectRange { peer: string, start: number, end: number }

export interface SourceFetchOptions {
  signal?: AbortSignal
  /**
   * The caller takes each 'data' chunk synchronously (writes or copies it before its listener returns):
   * the source may answer with a body whose chunks are views into a reused buffer (`volatile`). A
   * source that wraps another and pipes its bodies must not pass this on.
   */
  takesVolatile?: boolean
  /**
   * The caller hands the bytes to a client as they come, with no check of the whole blob's digest before
   * the last one (a pass-through): the source must not answer with bytes nobody vouched for (`unverified`,
   * `needsDigest`).
   */
  verifiedOnly?: boolean
}

export interface InOrderSink {
  update: (bytes: Buffer) => void
  verified: (sha256: string) => void
}

export interface SourceResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: Dispatcher.ResponseData['body']
  /** The body's chunks are views into a reused buffer, valid only while a 'data' listener runs. */
  readonly volatile?: boolean
  /** URL that answered, after redirects. */
  readonly url: URL
  /** Parsed Content-Range of a 206 (or `bytes *\/total` of a 416). */
  readonly contentRange: { start: number, end: number, total: number | null } | null
  /**
   * Bytes nobody vouched for yet (a peer's download still in flight): written, hashed, but held back
   * from readers until the whole blob is verified.
   */
  readonly unverified?: boolean
  /**
   * Bytes checked only against their sender's own word (an open cluster's member, whose piece list
   * nobody vouched for): a download may pass them on, since it checks the whole blob's digest before its
   * last byte; a reader without that check (a pass-through) must not.
   */
  readonly needsDigest?: boolean
  /**
   * Bytes of a peer's download still in flight: they come at that download's pace, and a wait for them
   * is no stall of this one's (it is still duplicated, in case the peer froze, but not reported).
   */
  readonly readAlong?: boolean
  /** Milliseconds from the request to its response headers (the last hop's, when redirected). */
  readonly latencyMs?: number
}

export interface UpstreamSourceInit {
  url: URL
  /** Request headers sent to the original origin (authorization is dropped on cross-origin redirects). */
  headers?: Record<string, string>
  maxRedirects?: number
  headersTimeoutMs?: number
  bodyTimeoutMs?: number
}

const REDIRECT = new Set([301, 302, 303, 307, 308])
/** Statuses by which an expired signed URL refuses service; the original URL is resolved again. */
const EXPIRED = new Set([400, 401, 403, 410])

/** Drops a response body; the abort error undici emits for it has nobody to tell. */
export function discardBody (body: { on: (ev: 'error', fn: () => void) => unknown, destroy: () => unknown }): void {
  body.on('error', () => {})
  body.destroy()
}

export function parseContentRange (value: string | undefined): SourceResponse['contentRange'] {
  if (value === undefined) return null
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(value.trim())
  if (m === null) return null
  const total = m[3] === '*' ? null : Number(m[3])
  if (m[1] === undefined) return { start: -1, end: -1, total }
  return { start: Number(m[1]), end: Number(m[2]), total }
}

/**
 * A 206 whose Content-Length is not its Content-Range's length: which of the two frames the body is
 * unknown, and the bytes left over on a keep-alive connection would be read as the next answer.
 */
export function framingContradicts (res: SourceResponse): boolean {
  if (res.status !== 206 || res.contentRange === null || res.contentRange.start < 0) return false
  const length = res.headers['content-length']
  return length !== undefined && /^\d+$/.test(length) && Number(length) !== res.contentRange.end - res.contentRange.start + 1
}

function flatHeaders (raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v
  }
  return out
}

/** Headers meant for the node's own dispatcher interceptors (OCI registry auth), never sent as they are. */
const INTERCEPTOR_HEADER = /^x-aimirror-/i

/** Pause before the one more try of a request cut before any answer. */
const AGAIN_AFTER_MS = 250

/**
 * Range GETs against the upstream through the injected dispatcher, following redirects server-side.
 * With `sockets`, a range a caller takes synchronously goes over the lighter keep-alive connections of
 * RangeSockets to the URL that last served bytes; any answer other than a plain 206 is asked again
 * through the dispatcher, which knows redirects, expired signed URLs and registry auth.
 */
export class UpstreamSource implements Source {
  readonly name = 'upstream'
  readonly original: URL
  /** Last URL that served bytes (a CDN or signed URL); reused until it stops working. */
  resolved: URL
  private readonly dispatcher: Dispatcher
  private readonly sockets: RangeSockets | null
  private readonly brokenRanges: BrokenRanges | null
  private readonly away: AwayOrigins | null
  /** Set once the upstream answered a range in a way RangeSockets does not read (chunked, no length). */
  private socketsOff = false
  private readonly headers: Record<string, string>
  private readonly maxRedirects: number
  private readonly headersTimeout: number
  private readonly bodyTimeout: number

  constructor (components: { dispatcher: Dispatcher, sockets?: RangeSockets | null, brokenRanges?: BrokenRanges, away?: AwayOrigins }, init: UpstreamSourceInit) {
    this.dispatcher = components.dispatcher
    this.sockets = components.sockets ?? null
    this.brokenRanges = components.brokenRanges ?? null
    this.away = components.away ?? null
    this.original = init.url
    this.resolved = init.url
    this.headers = init.headers ?? {}
    this.maxRedirects = init.maxRedirects ?? 10
    this.headersTimeout = init.headersTimeoutMs ?? 30_000
    this.bodyTimeout = init.bodyTimeoutMs ?? 30_000
  }

  async fetch (asked: { start: number, end: number } | null, options: SourceFetchOptions = {}): Promise<SourceResponse> {
    // A 200 for the whole file is what a download of such an origin plans from (it is not ranged).
    const range = asked !== null && this.brokenRanges?.has(this.original) === true ? null : asked
    if (range !== null && options.takesVolatile === true && this.sockets !== null && !this.socketsOff) {
      const quick = await this.overSockets(this.sockets, this.resolved, range, options.signal)
      if (quick !== null) return quick
    }
    let first: SourceResponse
    try {
      first = await this.follow(this.resolved, range, options.signal)
    } catch (err) {
      if (!isAimirrorError(err) || err.code !== 'ERR_UPSTREAM_UNREACHABLE' || options.signal?.aborted === true) throw err
      // Refused or cut before any answer (a proxy's hiccup, a server restarting): asked once more.
      await sleep(AGAIN_AFTER_MS, undefined, { signal: options.signal })
      first = await this.follow(this.resolved, range, options.signal)
    }
    if (!EXPIRED.has(first.status) || this.resolved.href === this.original.href) return first
    // The signed URL expired: resolve the original URL again and carry on from the same range.
    await first.body.dump().catch(() => {})
    const again = await this.follow(this.original, range, options.signal)
    return again
  }

  private async follow (start: URL, range: { start: number, end: number } | null, signal: AbortSignal | undefined): Promise<SourceResponse> {
    let url = start
    for (let hop = 0; ; hop++) {
      const sent = performance.now()
      const res = await this.request(url, range, signal)
      const location = res.headers.location
      if (!REDIRECT.has(res.statusCode) || location === undefined) {
        const headers = flatHeaders(res.headers)
        if (res.statusCode < 300) this.resolved = url
        return this.noted({ status: res.statusCode, headers, body: res.body, url, contentRange: parseContentRange(headers['content-range']), latencyMs: performance.now() - sent })
      }
      await res.body.dump().catch(() => {})
      // The URL without its query: a signed URL's signature stays out of errors and logs.
      if (hop >= this.maxRedirects) throw new UpstreamProtocolError('Too many redirects', { detail: { url: this.original.origin + this.original.pathname } })
      url = new URL(Array.isArray(location) ? String(location[0]) : location, url)
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamProtocolError('Redirect to an unsupported scheme')
    }
  }

  /** A 206 over RangeSockets, or null when the dispatcher should ask instead. */
  private async overSockets (sockets: RangeSockets, url: URL, range: { start: number, end: number }, signal: AbortSignal | undefined): Promise<SourceResponse | null> {
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(this.headersFor(url, range))) {
      if (!INTERCEPTOR_HEADER.test(k)) headers[k] = v
      // Registry auth lives in the dispatcher; the registry itself is asked through it.
      else if (url.origin === this.original.origin) return null
    }
    let res
    try {
      res = await sockets.get(url, headers, { signal, accept: head => head.status === 206 })
    } catch (err) {
      throw mapUpstreamError(err, signal)
    }
    if (res.body === null || res.head === null) {
      // Not read there for good when the upstream frames its ranges in a way RangeSockets does not read.
      if (res.head === null || res.head.status === 206) this.socketsOff = true
      return null
    }
    const h = res.head.headers
    // Handed only to a caller that takes volatile chunks (drainBody), which uses no more of a body than
    // a VolatileBody has: 'data' / 'end' / 'error' / 'close', pause, resume, destroy, dump.
    const body = res.body as unknown as Dispatcher.ResponseData['body']
    return this.noted({ status: 206, headers: h, body, volatile: true, url, contentRange: parseContentRange(h['content-range']) })
  }

  /** Notes what an answer tells of its upstream: that it answers (it is not away), how it frames ranges. */
  private noted (res: SourceResponse): SourceResponse {
    if (res.status < 500) this.away?.answered(res.url.origin)
    if (framingContradicts(res)) this.brokenRanges?.mark(this.original)
    return res
  }

  /** The request headers for `url`: credentials only for the original origin. */
  private headersFor (url: URL, range: { start: number, end: number } | null): Record<string, string> {
    const headers: Record<string, string> = { ...this.headers, 'accept-encoding': 'identity' }
    if (url.origin !== this.original.origin) {
      delete headers.authorization
      delete headers.cookie
    }
    if (range !== null) headers.range = `bytes=${range.start}-${range.end}`
    return headers
  }

  private async request (url: URL, range: { start: number, end: number } | null, signal: AbortSignal | undefined): Promise<Dispatcher.ResponseData> {
    const headers = this.headersFor(url, range)
    try {
      return await this.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'GET',
        headers,
        signal,
        headersTimeout: this.headersTimeout,
        bodyTimeout: this.bodyTimeout
      })
    } catch (err) {
      throw mapUpstreamError(err, signal, true)
    }
  }
}

/** `beforeAnswer`: the error came before any response head: a connection closed then is an upstream not reached. */
export function mapUpstreamError (err: unknown, signal?: AbortSignal, beforeAnswer = false): Error {
  if (isAimirrorError(err)) return err
  if (signal?.aborted === true) return new AbortedError(undefined, { cause: err })
  const code = (err as { code?: string } | null)?.code
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new UpstreamTimeoutError(undefined, { cause: err })
  }
  if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED' || code === 'ECONNRESET') {
    return beforeAnswer
      ? new UpstreamUnreachableError('Upstream closed the connection before answering', { cause: err })
      : new UpstreamProtocolError('Upstream closed the connection', { cause: err })
  }
  return new UpstreamUnreachableError(undefined, { cause: err })
}
