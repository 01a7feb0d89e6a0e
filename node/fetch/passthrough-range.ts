import { setTimeout as sleep } from 'node:timers/promises'
import { hasReason, isAimirrorError, UpstreamProtocolError } from '../errors.ts'
import { discardBody, mapUpstreamError } from './upstream-source.ts'
import type { Source, SourceResponse } from './upstream-source.ts'
import { realProgress } from './progress.ts'
import { isOutage, MAX_BACKOFF_MS, retryAfterOf, toldToWaitMs } from './outage.ts'
import { StallWatch } from './stall-watch.ts'
import type { StallAttempt } from './stall-watch.ts'
import { CHANGED_IN_A_ROW, contentChanged, isContentChanged, sameVersion } from './version.ts'
import type { Validator } from '../store/index-db.ts'

/** Breaks in a row with no byte between them after which a pass-through range gives up (outages aside). */
export const RANGE_RETRIES = 3
/** An upstream away this long since a range's last progress (twice the default read_timeout_s) fails it. */
export const DEFAULT_OUTAGE_MS = 60_000
const RETRY_BASE_MS = 100
/** Why a source's answer was refused when it brought bytes nobody vouched for (no outage: not waited out). */
const UNVERIFIED = 'unverified'

/** The read timeout a pass-through's stalls grow to when none was given (the default read_timeout_s). */
export const DEFAULT_STALL_CAP_MS = 30_000

/**
 * When a pass-through range asks again after a failed attempt. A break after real progress resumes at
 * once; one without waits (100 ms doubling to 4 s, or the upstream's Retry-After) and gives up after
 * RANGE_RETRIES in a row, unless the upstream is away (refused, reset before answering, 5xx, 429): that
 * is waited out until `outageMs` after the last progress, as a download does (a proxy's blip of a few
 * seconds cut a client's pass-through stream). A request given up for sending nothing (see StallWatch)
 * is asked again at once and counts only once its wait reached the read timeout.
 */
export class RangeRetries {
  /** Requests of this range in a row given up for sending nothing: the next one waits longer. */
  stalls = 0
  private failures = 0
  private changed = 0
  private progressAt = Date.now()
  private readonly outageMs: number
  private readonly signal: AbortSignal
  readonly watch: StallWatch

  constructor (outageMs: number, signal: AbortSignal, watch = new StallWatch(DEFAULT_STALL_CAP_MS)) {
    this.outageMs = outageMs
    this.signal = signal
    this.watch = watch
  }

  /** After an attempt that moved the range from `before` to `after` and then failed with `err`: resolves when to ask again, or throws. */
  async again (err: unknown, before: number, after: number): Promise<void> {
    if (this.signal.aborted) throw err
    if (realProgress(before, after)) {
      this.failures = 0
      this.stalls = 0
      this.changed = 0
      this.progressAt = Date.now()
      return
    }
    const mapped = mapUpstreamError(err, this.signal)
    // Another version of the file: asked again at once (one CDN edge behind), then the stream fails,
    // never stitched from two versions.
    if (isContentChanged(mapped)) {
      if (++this.changed >= CHANGED_IN_A_ROW) throw mapped
      return
    }
    const stalledMs = isAimirrorError(mapped) ? mapped.detail?.stalledMs : undefined
    if (typeof stalledMs === 'number' && !this.watch.atCap(stalledMs)) {
      this.stalls++
      return
    }
    this.failures++
    const refused = hasReason(mapped, UNVERIFIED)
    const away = !refused && isOutage(mapped, after === before) && Date.now() - this.progressAt < this.outageMs
    if (this.failures > RANGE_RETRIES && !away) throw err
    await sleep(Math.max(Math.min(RETRY_BASE_MS * 2 ** (this.failures - 1), MAX_BACKOFF_MS), toldToWaitMs(mapped)), undefined, { signal: this.signal })
  }
}

/** Bytes a client may have with no digest check before their last one. */
export function vouched (res: SourceResponse): boolean {
  return res.unverified !== true && res.needsDigest !== true
}

/**
 * The first response, when a pass-through range starting at `start` may use it (it starts there and
 * nobody has to vouch for its bytes later); else it is discarded and null (the range is asked again,
 * for verified bytes only).
 */
export function usableFirst (first: SourceResponse | null, start: number): SourceResponse | null {
  if (first === null) return null
  if (vouched(first) && (first.contentRange?.start ?? 0) === start) return first
  discardBody(first.body)
  return null
}

/** The version of the file a pass-through began with: each later answer must be of it. */
export interface PassthroughVersion {
  validator: Validator
  size: number | null
}

/**
 * Checks a source's answer to a pass-through's request for the bytes from `pos`; returns how many
 * bytes of its body come before `pos` (an upstream without Range support sends the whole file). An
 * answer of another `version` (its validator or its size) is refused.
 */
export function bytesBefore (res: SourceResponse, pos: number, version: PassthroughVersion | null = null): number {
  if (!vouched(res)) {
    discardBody(res.body)
    throw new UpstreamProtocolError('A source answered a pass-through with unverified bytes', { detail: { reason: UNVERIFIED } })
  }
  if (version !== null && (res.status === 200 || res.status === 206) && !ofVersion(res, version)) {
    discardBody(res.body)
    throw contentChanged(res.status)
  }
  if (res.status === 200) return pos
  if (res.status !== 206 || res.contentRange?.start !== pos) {
    discardBody(res.body)
    const retryAfterMs = retryAfterOf(res)
    throw new UpstreamProtocolError('Unexpected upstream response to a range request', { detail: retryAfterMs === null ? { status: res.status } : { status: res.status, retryAfterMs } })
  }
  return 0
}

function ofVersion (res: SourceResponse, version: PassthroughVersion): boolean {
  if (!sameVersion(res.headers, version.validator)) return false
  if (version.size === null) return true
  const size = res.status === 206 ? res.contentRange?.total : Number(res.headers['content-length'] ?? Number.NaN)
  return size === undefined || size === null || Number.isNaN(size) || size === version.size
}

/** `chunk` without its first `skip` bytes (those before the range, in a 200's body). */
export function dropHead (chunk: Buffer, skip: number): Buffer {
  return skip > 0 ? chunk.subarray(Math.min(skip, chunk.length)) : chunk
}

export interface RangeTarget {
  readonly start: number
  readonly buf: Buffer
  /** Bytes landed in `buf` so far. */
  filled: number
  /** Called as bytes land. */
  landed: () => void
}

/**
 * Fills `into.buf` with the file's bytes from `into.start`, asking again from the last byte when a
 * request fails or a connection breaks (see RangeRetries). Bodies may be volatile: each chunk is copied
 * in its 'data' event, so a socket read allocates nothing that outlives it.
 */
export interface FillOptions {
  /** See RangeRetries (default DEFAULT_OUTAGE_MS). */
  outageMs?: number
  /** The pass-through's, shared by its ranges (default: one of this range's own). */
  watch?: StallWatch
  version?: PassthroughVersion | null
}

/**
 * The answer for the bytes [pos, end) under `attempt`: `first` when there is one (it was asked with the
 * stream's own signal, so a stall stops it here), else a new request; checked by bytesBefore.
 */
export async function askRange (source: Source, first: SourceResponse | null, range: { pos: number, end: number }, attempt: StallAttempt, o: { version: PassthroughVersion | null, takesVolatile?: boolean }): Promise<{ res: SourceResponse, skip: number }> {
  let res = first
  if (res === null) {
    res = await source.fetch({ start: range.pos, end: range.end - 1 }, { signal: attempt.signal, verifiedOnly: true, takesVolatile: o.takesVolatile })
    attempt.touch()
  } else {
    const body = res.body
    attempt.signal.addEventListener('abort', () => { discardBody(body) }, { once: true })
  }
  return { res, skip: bytesBefore(res, range.pos, o.version) }
}

export async function fillRange (source: Source, first: SourceResponse | null, into: RangeTarget, onBytes: (n: number) => void, signal: AbortSignal, options: FillOptions = {}): Promise<void> {
  const end = into.start + into.buf.length
  let res = usableFirst(first, into.start)
  const retries = new RangeRetries(options.outageMs ?? DEFAULT_OUTAGE_MS, signal, options.watch)
  while (into.start + into.filled < end) {
    const pos = into.start + into.filled
    const before = into.filled
    const attempt = retries.watch.attempt(signal, retries.stalls)
    try {
      const asked = await askRange(source, res, { pos, end }, attempt, { version: options.version ?? null, takesVolatile: true })
      res = asked.res
      await drainInto(res, asked.skip, into, n => { attempt.touch(); onBytes(n) })
    } catch (err) {
      if (res !== null) discardBody(res.body)
      res = null
      await retries.again(attempt.failure(err), before, into.filled)
    } finally {
      attempt.done()
      if (res !== null) discardBody(res.body)
      res = null
    }
  }
}

/** Copies a body into `into` from its `skip`th byte until `into` is full or the body ends. */
async function drainInto (res: SourceResponse, skip: number, into: RangeTarget, onBytes: (n: number) => void): Promise<void> {
  const body = res.body
  // A body already gone (a first response given up meanwhile) would never end: the range is asked again.
  if (body.destroyed) throw body.errored ?? new UpstreamProtocolError('Upstream body ended early')
  let left = skip
  await new Promise<void>((resolve, reject) => {
    const stop = (err?: unknown): void => {
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', stop)
      body.off('close', onClose)
      // A body left before its end errors once destroyed; nobody needs that.
      body.on('error', () => {})
      if (err === undefined) resolve()
      else reject(err)
    }
    const onData = (raw: Buffer): void => {
      onBytes(raw.length)
      const chunk = dropHead(raw, left)
      left -= raw.length - chunk.length
      const n = Math.min(chunk.length, into.buf.length - into.filled)
      if (n > 0) {
        chunk.copy(into.buf, into.filled, 0, n)
        into.filled += n
        into.landed()
      }
      // Full: the rest of a longer body (a 200, a first response past this range) is not needed.
      if (into.filled === into.buf.length && res.contentRange?.end !== into.start + into.filled - 1) stop()
    }
    // A body that delivered all it announced ends on 'end' (its connection is free for the next request then).
    const onEnd = (): void => { stop(into.filled === into.buf.length ? undefined : new UpstreamProtocolError('Upstream body ended early')) }
    const onClose = (): void => { stop(new UpstreamProtocolError('Upstream body ended early')) }
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', stop)
    body.once('close', onClose)
  })
}
