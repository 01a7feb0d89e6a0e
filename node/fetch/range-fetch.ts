import { setTimeout as sleep } from 'node:timers/promises'
import { isAimirrorError, isCacheDiskFailure, UpstreamProtocolError, UpstreamTimeoutError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { drainBody } from './body-sink.ts'
import type { ByteRanges } from './byte-ranges.ts'
import type { FileWriter } from './file-writer.ts'
import type { Validator } from '../store/index-db.ts'
import type { Assignment } from './pieces.ts'
import { discardBody, framingContradicts, mapUpstreamError } from './upstream-source.ts'
import type { Source, SourceResponse } from './upstream-source.ts'
import { REAL_PROGRESS, realProgress } from './progress.ts'
import { isOutage, MAX_BACKOFF_MS, retryAfterOf, toldToWaitMs } from './outage.ts'
import { CHANGED_IN_A_ROW, cannotResume, contentChanged, isContentChanged, isUnresumable, rangesContradict, sameVersion, unversioned } from './version.ts'
import { fileOf } from './response-meta.ts'

/** What one download lends the connection filling one of its assignments. */
export interface RangeFetchHost {
  readonly source: Source
  readonly signal: AbortSignal
  /** The temp file's writer (opened once the first response is in). */
  readonly writer: () => FileWriter
  /** Bytes on disk, whoever wrote them. */
  readonly written: ByteRanges
  readonly maxRetries: number
  readonly retryBaseMs: number
  /**
   * An upstream that is away (refuses connections, answers 5xx or 429) is asked again, past maxRetries,
   * until this long after the piece's last progress: a restart or a proxy's blip mid-download is ridden out.
   */
  readonly outageMs: number
  readonly log: Logger
  readonly key: string
  settled: () => boolean
  rangeSupported: () => boolean
  size: () => number | null
  /** The first response's validator: a later response that differs means the file changed. */
  validator: () => Validator | undefined
  /** A socket chunk arrived; `allocated` when it came in a buffer of its own (a volatile one did not). */
  received: (bytes: number, allocated: boolean) => void
  /** `chunk` is on disk at `at`; `unverified` when its source could not vouch for it. */
  landed: (at: number, chunk: Buffer, unverified: boolean) => void
  /** A body of unknown length ended: its end is the file's size. */
  ended: (size: number) => void
}

/**
 * Fills one assignment: asks the source for [pos, end), streams the body into the temp file, and when
 * the connection breaks asks again from the last byte (at once after progress, with backoff after a
 * failure that brought nothing). `first` is a response already open for it (the download's first).
 */
export async function fetchAssignment (a: Assignment, first: SourceResponse | undefined, host: RangeFetchHost): Promise<void> {
  let res = first
  try {
    await fillAssignment(a, res, host)
    res = undefined
  } finally {
    // A pre-opened response the loop never consumed (download settled first).
    if (res !== undefined && !res.body.readableEnded) discardBody(res.body)
  }
}

/**
 * A download's first response, asked again when it cannot start a plan: a 416 for a resumed range past
 * the end (the file shrank) is asked from byte 0; a 206 for other bytes than asked is asked again, then
 * like a 206 that does not say the file's size (`bytes a-b/*`, no Content-Range) or whose Content-Length
 * contradicts its Content-Range replaced by the whole file in one GET.
 */
export async function plannableFirst (source: Source, first: SourceResponse, ask: { start: number, end: number }, signal: AbortSignal): Promise<SourceResponse> {
  let res = first
  let asked = ask
  if (res.status === 416 && res.contentRange?.total !== 0 && ask.start > 0) {
    await res.body.dump().catch(() => {})
    asked = { start: 0, end: ask.end - ask.start }
    res = await source.fetch(asked, { signal })
  }
  // A 206 for other bytes than asked: its body cannot be placed by a Content-Range that already told one
  // thing that was not so (every later piece is refused for this too). Asked once more, then whole.
  if (otherRange(res, asked)) {
    discardBody(res.body)
    res = await source.fetch(asked, { signal })
    if (otherRange(res, asked)) return await wholeFile(source, res, signal)
  }
  if (res.status === 206 && (res.contentRange === null || res.contentRange.total === null || framingContradicts(res))) return await wholeFile(source, res, signal)
  return res
}

/**
 * A file the upstream gives no ETag and no Last-Modified, whose digest is not known either, comes in one
 * whole-file GET: nothing would tell ranges of two versions apart, so a file replaced while it downloads
 * would be stitched from both.
 */
export async function wholeIfUnversioned (source: Source, res: SourceResponse, digestKnown: boolean, signal: AbortSignal): Promise<SourceResponse> {
  if (res.status !== 206 || digestKnown || !unversioned(fileOf(res).validator)) return res
  return await wholeFile(source, res, signal)
}

function otherRange (res: SourceResponse, asked: { start: number }): boolean {
  return res.status === 206 && res.contentRange !== null && res.contentRange.start !== asked.start
}

/** The whole file in one GET instead of a range response the download cannot plan from. */
async function wholeFile (source: Source, instead: SourceResponse, signal: AbortSignal): Promise<SourceResponse> {
  discardBody(instead.body)
  const res = await source.fetch(null, { signal })
  if (res.status === 206) {
    discardBody(res.body)
    throw new UpstreamProtocolError('Upstream answers a whole-file request with a range')
  }
  return res
}

function missing (a: Assignment, host: RangeFetchHost): boolean {
  return a.pos < a.end && !host.written.covers(a.pos, Math.min(a.end, host.size() ?? a.end))
}

async function fillAssignment (a: Assignment, first: SourceResponse | undefined, host: RangeFetchHost): Promise<void> {
  let res = first
  let failures = 0
  let changed = 0
  let progressAt = Date.now()
  /** Where the last whole-file body that brought bytes broke off (-1: none did). */
  let cutAt = -1
  while (!host.settled() && missing(a, host)) {
    const before = a.pos
    const tally = { bytes: 0 }
    try {
      if (res === undefined) {
        if (!host.rangeSupported() && a.pos > 0 && unversioned(host.validator())) throw cannotResume(a.pos)
        const range = host.rangeSupported() ? { start: a.pos, end: a.end - 1 } : null
        // undici frees the previous response's connection a moment after its body ended; asking
        // in the same turn would open another connection.
        await new Promise(resolve => setImmediate(resolve))
        res = await host.source.fetch(range, { signal: host.signal, takesVolatile: true })
        checkResponse(res, a.pos, host)
      }
      const body = res
      res = undefined
      a.readAlong = body.readAlong === true
      await consume(body, a, host, tally)
    } catch (err) {
      if (res !== undefined) discardBody(res.body)
      res = undefined
      const mapped = mapUpstreamError(err, host.signal)
      if (host.settled() || isCacheDiskFailure(mapped) || isUnresumable(mapped) || (isAimirrorError(mapped) && mapped.code === 'ERR_ABORTED')) throw mapped
      const progress = realProgress(before, a.pos)
      if (progress) {
        failures = 0
        changed = 0
        progressAt = Date.now()
      }
      if (!host.rangeSupported() && tally.bytes > 0) {
        // The whole file again, cut at the same byte: its Content-Length is wrong, not the line (and
        // each try costs the file's bytes up to there).
        if (a.pos === cutAt) throw new UpstreamProtocolError(`Upstream body ends at byte ${a.pos} on every request, short of its Content-Length`, { detail: { pos: a.pos } })
        cutAt = a.pos
      }
      if (isContentChanged(mapped)) {
        if (++changed >= CHANGED_IN_A_ROW) throw mapped
        continue
      }
      failures++
      if (failures > host.maxRetries && !(isOutage(mapped, a.pos === before) && Date.now() - progressAt < host.outageMs)) {
        throw a.pos > before ? keepsStalling(mapped, failures, a.pos) : mapped
      }
      // The cause's own words: a peer that left says so, not "upstream unreachable".
      host.log.debug({ key: host.key, pos: a.pos, failures, err: (err as Error).message ?? mapped.message }, 'piece interrupted; resuming')
      // A connection that brought bytes before it broke resumes at once; backoff is for failures without progress.
      // An upstream that says when to come back (429, 503 with Retry-After) is asked no sooner.
      const told = toldToWaitMs(mapped)
      if (!progress) await sleep(Math.max(Math.min(host.retryBaseMs * 2 ** (failures - 1), MAX_BACKOFF_MS), told), undefined, { signal: host.signal })
    }
  }
  // A first response for bytes already on disk (a resumed download) is not needed.
  if (res !== undefined) discardBody(res.body)
}



/** The last of several attempts in a row that each brought a little and then broke or went quiet. */
function keepsStalling (err: Error, attempts: number, pos: number): Error {
  if (!isAimirrorError(err) || err.code !== 'ERR_UPSTREAM_TIMEOUT') return err
  return new UpstreamTimeoutError(`Upstream keeps stalling: ${attempts} attempts in a row at byte ${pos} each brought under ${REAL_PROGRESS >> 10} KiB, then nothing`, { cause: err })
}

function checkResponse (res: SourceResponse, pos: number, host: RangeFetchHost): void {
  let fits: boolean
  if (!host.rangeSupported()) {
    // The whole file again, from its first byte: the bytes before `pos` are skipped, so they must be the same file's.
    const length = res.headers['content-length']
    const size = host.size()
    fits = res.status === 200 && (size === null || length === undefined || Number(length) === size)
  } else {
    fits = res.status === 206 && res.contentRange !== null && res.contentRange.start === pos &&
      (res.contentRange.total === null || res.contentRange.total === host.size())
  }
  if (!fits) {
    discardBody(res.body)
    const retryAfterMs = retryAfterOf(res)
    throw new UpstreamProtocolError('Unexpected upstream response to a range request', { detail: retryAfterMs === null ? { status: res.status } : { status: res.status, retryAfterMs } })
  }
  if (framingContradicts(res)) {
    discardBody(res.body)
    throw rangesContradict(res.status)
  }
  if (!sameVersion(res.headers, host.validator())) {
    discardBody(res.body)
    throw contentChanged(res.status)
  }
}

/** Streams a response body into the temp file (see drainBody), then checks how it ended. */
async function consume (res: SourceResponse, a: Assignment, host: RangeFetchHost, tally: { bytes: number }): Promise<void> {
  const writer = host.writer()
  const { off, bodyEnd } = await drainBody(res, a, {
    writer,
    settled: host.settled,
    enough: () => host.settled() || a.pos >= a.end || (host.size() !== null && !missing(a, host)),
    // A volatile chunk allocated nothing (drainBody's copies of them are pooled).
    received: (n) => {
      tally.bytes += n
      host.received(n, res.volatile !== true)
    },
    landed: (at, chunk) => { host.landed(at, chunk, res.unverified === true) }
  })
  if (host.settled()) return
  if (host.size() === null && !host.rangeSupported() && a.pos === off) {
    // Unknown length: the end of the body is the end of the file.
    host.ended(a.pos)
    return
  }
  // A source may answer fewer bytes than asked: all it announced arrived, the rest is asked again.
  if (off >= bodyEnd) return
  if (missing(a, host)) throw new UpstreamProtocolError('Upstream body ended early')
}
