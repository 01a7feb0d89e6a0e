import { deadline } from '../abort.ts'
import { readLimited } from '../upstream/request.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { Validator } from '../store/index-db.ts'
import type { AwayOrigins } from '../upstream/away.ts'
import type { BlobHandle, UpstreamRequest } from './acquire-types.ts'
import type { BlobIdentity } from './identity.ts'
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
 * The end of a file without ETag or Last-Modified, compared byte for byte when it is checked: where a
 * format keeps a checksum of the whole (a gzip's trailer, a zip's central directory), it is at the end.
 */
const TAIL_BYTES = 64 * 1024

/** How long a check may take before the cached copy is served as it is (the upstream may be down). */
const CHECK_TIMEOUT_MS = 3_000
/** After a check that said nothing, the cached copy is served without asking for this long. */
const RETRY_AFTER_MS = 60_000
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
 * When the upstream cannot tell, the cached copy is served and the check waits RETRY_AFTER_MS: for that
 * key after an answer that says nothing (an error status), for the whole origin when it did not answer
 * (down or slow: no hit waits on it again meanwhile).
 */
export class Revalidator {
  private readonly c: RevalidatorComponents
  private readonly checking = new Map<string, Promise<Verdict>>()
  /** Key or origin → when its last check said nothing. */
  private readonly silent = new Map<string, number>()

  constructor (components: RevalidatorComponents) {
    this.c = components
  }

  /** Whether `hit` may be served for `identity`: false only when the upstream says the file changed. */
  async current (identity: BlobIdentity, hit: BlobHandle, upstream: UpstreamRequest, afterMs: number | undefined): Promise<boolean> {
    if (afterMs === undefined || identity.expected !== null || !identity.key.startsWith('url:') || hit.confirmedAt === undefined) return true
    const now = Date.now()
    if (now - hit.confirmedAt < afterMs || this.quiet(identity.key, now) || this.quiet(upstream.url.origin, now)) return true
    if (this.c.away?.isAway(upstream.url.origin) === true) return true
    let check = this.checking.get(identity.key)
    if (check === undefined) {
      check = this.check(identity.key, hit, upstream).finally(() => this.checking.delete(identity.key))
      this.checking.set(identity.key, check)
    }
    return await check !== 'changed'
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

  private quiet (what: string, now: number): boolean {
    const since = this.silent.get(what)
    return since !== undefined && now - since < RETRY_AFTER_MS
  }

  private hush (what: string): void {
    if (this.silent.size >= SILENT_MAX) this.silent.clear()
    this.silent.set(what, Date.now())
  }

  private async check (key: string, hit: BlobHandle, upstream: UpstreamRequest): Promise<Verdict> {
    const d = deadline(CHECK_TIMEOUT_MS)
    const origin = upstream.url.origin
    const askedAt = Date.now()
    const size = hit.meta.size ?? 0
    const tail = hit.meta.validator.etag === null && hit.meta.validator.lastModified === null ? Math.min(size, TAIL_BYTES) : 0
    let verdict: Verdict
    try {
      const res = await this.c.source(upstream).fetch(tail > 0 ? { start: size - tail, end: size - 1 } : { start: 0, end: 0 }, { signal: d.signal })
      this.c.away?.answered(origin)
      verdict = compareWithCached({ size: hit.meta.size, validator: hit.meta.validator }, res)
      if (verdict === 'same' && tail > 0) verdict = await compareTail(res, hit, size - tail, tail)
      else await res.body.dump().catch(() => {})
    } catch (err) {
      this.c.logger.debug({ err, key }, 'could not check a cached file with the upstream; serving the cached copy')
      this.hush(origin)
      // No answer within the check's time is the upstream being away for clients too.
      if (d.signal.aborted) this.c.away?.noAnswer(origin, askedAt)
      else this.c.away?.failed(origin, err, askedAt)
      return 'unknown'
    } finally {
      d.clear()
    }
    if (verdict === 'same') {
      this.silent.delete(key)
      await this.c.store.confirmKey(key).catch((err: unknown) => { this.c.logger.warn({ err, key }, 'could not record a confirmation') })
    } else if (verdict === 'unknown') {
      this.hush(key)
    } else {
      this.silent.delete(key)
      this.c.logger.info({ key }, 'cached file changed upstream (or is gone, or refused to this client); asking the upstream again')
    }
    return verdict
  }
}

/** Whether a 206 for the cached file's last `length` bytes (from `start`) brings the bytes cached. */
async function compareTail (res: SourceResponse, hit: BlobHandle, start: number, length: number): Promise<Verdict> {
  if (res.status !== 206 || res.contentRange?.start !== start) {
    await res.body.dump().catch(() => {})
    // No range to compare (a whole-file answer): the size is all there is to go by.
    return 'same'
  }
  const [upstream, cached] = await Promise.all([readLimited(res.body, length), readLimited(hit.open(start, start + length), length)])
  // A body cut short says nothing.
  if (upstream.length !== length) return 'unknown'
  return upstream.equals(cached) ? 'same' : 'changed'
}
