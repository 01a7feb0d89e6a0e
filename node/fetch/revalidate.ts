import { deadline } from '../abort.ts'
import { isNoAnswer } from '../errors.ts'
import { readLimited, readPrefix } from '../upstream/request.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { Validator } from '../store/index-db.ts'
import type { AwayOrigins } from '../upstream/away.ts'
import type { BlobHandle, UpstreamRequest } from './acquire-types.ts'
import type { BlobIdentity } from './identity.ts'
import { lruCache } from '../lru.ts'
import { retryAfterOf } from './outage.ts'
import { fileOf } from './response-meta.ts'
import type { Source, SourceResponse } from './upstream-source.ts'

/** What the upstream says about a file cached by its URL: the same, changed (or gone), or nothing usable. */
export type Verdict = 'same' | 'changed' | 'unknown'

/** A validator as it compares: a weak ETag (W/"x") names the same file as the strong one. */
function etagOf (value: string | null | undefined): string | null {
  if (value === undefined || value === null || value === '') return null
  return value.startsWith('W/') ? value.slice(2) : value
}

/** A 401/403 that says "too many requests" (GitHub's rate limit): no word about the file. */
function rateLimited (res: SourceResponse): boolean {
  return res.headers['retry-after'] !== undefined || res.headers['x-ratelimit-remaining'] === '0'
}

/**
 * Compares a cached file (its size and the upstream's validator when it was fetched) with an upstream
 * answer for the same URL (a 200, or a 206 with its Content-Range total). ETags decide when both have
 * one, else Last-Modified; a different size is always a change. A 404 or 410 says the URL serves it no
 * more, a 401 or 403 that it is not for this client (any more: a file made private): its answer is then
 * the client's. Any other status says nothing (down, busy, rate-limited).
 */
export function compareWithCached (cached: { size: number | null, validator: Validator }, res: SourceResponse): Verdict {
  if (res.status === 404 || res.status === 410) return 'changed'
  if ((res.status === 401 || res.status === 403) && !rateLimited(res)) return 'changed'
  if (res.status !== 200 && res.status !== 206) return 'unknown'
  const { size, validator } = fileOf(res)
  if (size !== null && cached.size !== null && size !== cached.size) return 'changed'
  const etag = etagOf(validator.etag)
  const was = etagOf(cached.validator.etag)
  if (etag !== null && was !== null) return etag === was ? 'same' : 'changed'
  const lastModified = validator.lastModified
  if (lastModified !== null && cached.validator.lastModified !== null) return lastModified === cached.validator.lastModified ? 'same' : 'changed'
  // No validator on one side: the size is all there is to go by.
  return size !== null && size === cached.size ? 'same' : 'unknown'
}

/**
 * What of a file without ETag or Last-Modified is compared byte for byte when it is checked: all of a
 * small one; the first and last 64 KiB of a larger one (where formats keep their headers and a checksum
 * of the whole: a gzip's trailer, a zip's central directory). A same-size change elsewhere goes unseen.
 */
const SPAN_BYTES = 64 * 1024
const WHOLE_MAX = 4 * SPAN_BYTES

/**
 * How long a request waits for its file's check before the cached copy is served as it is (the upstream
 * may be down, or slow); an upstream that has not answered by then is taken as away until it does.
 */
const CHECK_WAIT_MS = 3_000
/**
 * How long the check itself may go on: its answer, however late, holds for the next request (a slow
 * upstream's changed file was otherwise never fetched again).
 */
const CHECK_TIMEOUT_MS = 30_000
/** After an answer that said nothing (an error status), the file is served without asking for this long, or its Retry-After. */
const QUIET_MS = 10_000
const SILENT_MAX = 10_000

export interface RevalidatorComponents {
  store: BlobStore
  logger: Logger
  /** Upstream origins taken as away: their cached files are served without a check meanwhile. */
  away?: AwayOrigins
  /** A source for the upstream request (redirects followed, signed URLs renewed). */
  source: (upstream: UpstreamRequest) => Source
}

/**
 * Checks files cached under URL keys with the upstream once their confirmation is older than the
 * caller's limit: a 1-byte range request (following redirects, so a `latest` link that now leads to
 * another file is seen), compared with the cached size and validator. One check per key at a time.
 * When the upstream cannot tell, the cached copy is served, unconfirmed: an origin that did not answer
 * is away (AwayOrigins: no hit waits on it until it answers again); after an answer that said nothing
 * (an error status) that key is not asked again for QUIET_MS. A request waits for its check at most
 * CHECK_WAIT_MS; the check goes on, and what it says holds for the next request.
 */
export class Revalidator {
  private readonly c: RevalidatorComponents
  private readonly checking = new Map<string, Promise<Verdict>>()
  /** Key → until when it is not asked again (its last check said nothing). */
  private readonly silent = new Map<string, number>()
  /** Key → what its last check said, and when: a check that ended after its request was served. */
  private readonly said = lruCache<string, { verdict: 'same' | 'changed', at: number }>(SILENT_MAX)

  constructor (components: RevalidatorComponents) {
    this.c = components
  }

  /**
   * Whether `hit` may be served for `identity`: `current` (confirmed recently enough, or now), `unconfirmed`
   * (its check is due but the upstream could not tell: served stale), or `changed`.
   */
  async current (identity: BlobIdentity, hit: BlobHandle, upstream: UpstreamRequest, afterMs: number | undefined): Promise<'current' | 'unconfirmed' | 'changed'> {
    if (afterMs === undefined || identity.expected !== null || !identity.key.startsWith('url:') || hit.confirmedAt === undefined) return 'current'
    const now = Date.now()
    if (now - hit.confirmedAt < afterMs) return 'current'
    const said = this.said.get(identity.key)
    if (said !== undefined && said.at > hit.confirmedAt) {
      if (said.verdict === 'changed') {
        this.said.delete(identity.key)
        return 'changed'
      }
      if (now - said.at < afterMs) return 'current'
    }
    let check = this.checking.get(identity.key)
    if (check === undefined) {
      if ((this.silent.get(identity.key) ?? 0) > now || this.c.away?.isAway(upstream.url.origin) === true) return 'unconfirmed'
      check = this.check(identity.key, hit, upstream).finally(() => this.checking.delete(identity.key))
      this.checking.set(identity.key, check)
    }
    const wait = deadline(CHECK_WAIT_MS)
    const verdict = await Promise.race([check, new Promise<'late'>(resolve => { wait.signal.addEventListener('abort', () => resolve('late'), { once: true }) })])
    wait.clear()
    if (verdict === 'late') return 'unconfirmed'
    if (verdict === 'changed') this.said.delete(identity.key)
    return verdict === 'same' ? 'current' : verdict === 'changed' ? 'changed' : 'unconfirmed'
  }

  /**
   * A cache hit as it may be served now: null when the upstream says the file changed (the hit is
   * released), marked `stale` when its check was due and the upstream could not tell.
   */
  async served (identity: BlobIdentity, hit: BlobHandle | null, upstream: UpstreamRequest, afterMs: number | undefined): Promise<BlobHandle | null> {
    if (hit === null) return null
    const freshness = await this.current(identity, hit, upstream, afterMs)
    if (freshness === 'changed') {
      hit.release()
      return null
    }
    return freshness === 'unconfirmed' ? { ...hit, stale: true } : hit
  }

  /** A hit served without asking the upstream (it is away, or failed): stale once its recheck is due. */
  unconfirmed (hit: BlobHandle, afterMs: number | undefined): BlobHandle {
    const due = afterMs !== undefined && hit.confirmedAt !== undefined && Date.now() - hit.confirmedAt >= afterMs
    return due ? { ...hit, stale: true } : hit
  }

  /**
   * What an upstream answer already in hand (a download's first range) says about a cached hit under
   * `key`; the same file renews the hit's confirmation.
   */
  judge (key: string, hit: BlobHandle, res: SourceResponse): Verdict {
    if (hit.confirmedAt === undefined) return 'unknown'
    const verdict = compareWithCached({ size: hit.meta.size, validator: hit.meta.validator }, res)
    if (verdict === 'same') this.c.store.confirmKey(key).catch((err: unknown) => { this.c.logger.warn({ err, key }, 'could not record a confirmation') })
    return verdict
  }

  private hush (key: string, ms: number): void {
    if (this.silent.size >= SILENT_MAX) this.silent.clear()
    this.silent.set(key, Date.now() + ms)
  }

  private async check (key: string, hit: BlobHandle, upstream: UpstreamRequest): Promise<Verdict> {
    const d = deadline(CHECK_TIMEOUT_MS)
    const origin = upstream.url.origin
    const askedAt = Date.now()
    const spans = comparedSpans(hit)
    let answered = false
    // No answer while a request waits for it is the upstream being away for clients too (its answer,
    // if it comes, ends that).
    const awayTimer = setTimeout(() => { if (!answered) this.c.away?.noAnswer(origin, askedAt) }, CHECK_WAIT_MS)
    let quietMs: number
    let verdict: Verdict
    try {
      const source = this.c.source(upstream)
      const res = await source.fetch(spans[0] ?? { start: 0, end: 0 }, { signal: d.signal })
      answered = true
      this.c.away?.answered(origin)
      quietMs = retryAfterOf(res) ?? QUIET_MS
      verdict = compareWithCached({ size: hit.meta.size, validator: hit.meta.validator }, res)
      if (verdict !== 'same' || spans[0] === undefined) await res.body.dump().catch(() => {})
      else verdict = await compareSpan(res, hit, spans[0])
      // An upstream without Range answered the whole file: its first bytes were compared, and asking
      // again would download it again.
      for (const span of res.status === 206 ? spans.slice(1) : []) {
        if (verdict !== 'same') break
        verdict = await compareSpan(await source.fetch(span, { signal: d.signal }), hit, span)
      }
    } catch (err) {
      this.c.logger.debug({ err, key }, 'could not check a cached file with the upstream; serving the cached copy')
      // No answer at all: the upstream is away for clients too, which its next answer ends; anything
      // else holds this file's next check back for a while.
      const away = this.c.away !== undefined && !answered && (d.signal.aborted || isNoAnswer(err))
      if (away && d.signal.aborted) this.c.away?.noAnswer(origin, askedAt)
      else if (away) this.c.away?.failed(origin, err, askedAt)
      else this.hush(key, QUIET_MS)
      return 'unknown'
    } finally {
      clearTimeout(awayTimer)
      d.clear()
    }
    if (verdict === 'same' || verdict === 'changed') this.said.set(key, { verdict, at: Date.now() })
    if (verdict === 'same') {
      this.silent.delete(key)
      await this.c.store.confirmKey(key).catch((err: unknown) => { this.c.logger.warn({ err, key }, 'could not record a confirmation') })
    } else if (verdict === 'unknown') {
      this.hush(key, quietMs)
    } else {
      this.silent.delete(key)
      this.c.logger.info({ key }, 'cached file changed upstream (or is gone, or refused to this client); asking the upstream again')
    }
    return verdict
  }
}

/** The inclusive byte spans of `hit` compared with the upstream's (none when a validator decides). */
function comparedSpans (hit: BlobHandle): Array<{ start: number, end: number }> {
  const size = hit.meta.size ?? 0
  if (size === 0 || hit.meta.validator.etag !== null || hit.meta.validator.lastModified !== null) return []
  if (size <= WHOLE_MAX) return [{ start: 0, end: size - 1 }]
  return [{ start: 0, end: SPAN_BYTES - 1 }, { start: size - SPAN_BYTES, end: size - 1 }]
}

/**
 * Whether a 206 for `span` of the cached file brings the bytes cached; of a whole-file answer (an
 * upstream without Range), its first bytes are compared when the span is the file's start.
 */
async function compareSpan (res: SourceResponse, hit: BlobHandle, span: { start: number, end: number }): Promise<Verdict> {
  if (res.status === 200 && span.start !== 0) {
    await res.body.dump().catch(() => {})
    // No range to compare: its size, compared already, is all there is to go by.
    return 'same'
  }
  if (res.status !== 200 && (res.status !== 206 || res.contentRange?.start !== span.start)) {
    await res.body.dump().catch(() => {})
    return 'unknown'
  }
  const length = span.end - span.start + 1
  const [upstream, cached] = await Promise.all([readPrefix(res.body, length).catch(() => Buffer.alloc(0)), readLimited(hit.open(span.start, span.end + 1), length)])
  // A body cut short (or broken) says nothing.
  if (upstream.length !== length) return 'unknown'
  return upstream.equals(cached) ? 'same' : 'changed'
}
