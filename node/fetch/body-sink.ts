import { cacheDiskError, UpstreamProtocolError } from '../errors.ts'
import { BufferPool } from './buffer-pool.ts'
import type { FileWriter } from './file-writer.ts'
import { raceWon } from './pieces.ts'
import type { Assignment } from './pieces.ts'
import { discardBody } from './upstream-source.ts'
import type { SourceResponse } from './upstream-source.ts'

/** What a body is drained into: one download's temp file and its bookkeeping. */
export interface SinkHost {
  readonly writer: FileWriter
  /** The download settled: no more bytes are taken. */
  settled: () => boolean
  /** The assignment needs no more bytes (reached its end, or someone else wrote the rest). */
  enough: () => boolean
  /** A socket chunk arrived (before any skipping). */
  received: (bytes: number) => void
  /** `chunk` is on disk at `at`. */
  landed: (at: number, chunk: Buffer) => void
}

/**
 * A chunk at least this large is written on the thread pool while its body goes on (a peer's verified
 * 1 MiB units): the event loop takes the next bytes while another core copies these into the page
 * cache. Smaller chunks (socket reads from an upstream) cost less written at once than handed over.
 */
export const WRITE_BEHIND_MIN = 256 << 10
/** Thread-pool writes of one body at once; the body is paused at this many… */
const WRITES_BEHIND = 2
/** …or when this many bytes wait to land (small chunks written at once behind a pending large one). */
const MAX_WAITING = 4 << 20

/** Copies of volatile chunks that outlive their 'data' event, shared by every download. */
const copies = new BufferPool({ maxIdleBytes: 8 << 20 })

/** A chunk taken from the body, on its way to disk; it lands once it and every chunk before it did. */
interface Taken {
  chunk: Buffer
  at: number
  written: boolean
}

/**
 * Streams a response body to its offsets in the temp file, advancing `a.pos` as bytes land, in
 * order. Chunks are taken one by one from 'data' events (async iteration would concatenate buffered
 * chunks into fresh allocations) and written at their offset as they come: small ones at once, large
 * ones (or all, once the writer moved to the thread pool) on the thread pool, the body going on until
 * two such writes are pending. Bytes before the next offset (a resumed 200) are skipped. Settles only
 * once no write of it is pending. Resolves with the body offset reached and the end the body announced
 * (Infinity for a 200).
 */
export async function drainBody (res: SourceResponse, a: Assignment, host: SinkHost): Promise<{ off: number, bodyEnd: number }> {
  const body = res.body
  let off = res.status === 206 && res.contentRange !== null ? res.contentRange.start : 0
  const bodyEnd = res.status === 206 && res.contentRange !== null ? res.contentRange.end + 1 : Number.POSITIVE_INFINITY
  if (body.destroyed) throw body.errored ?? new UpstreamProtocolError('Upstream body ended early')
  // Where the next byte taken goes (a.pos trails it by the bytes still being written).
  let next = a.pos
  const taken: Taken[] = []
  let waiting = 0
  let pending = 0
  await new Promise<void>((resolve, reject) => {
    // How it ends, once decided; it settles when no write is pending.
    let outcome: { err?: unknown } | null = null
    let settled = false
    // The body ended while writes were pending: the finish waits for them.
    let ended = false
    const settle = (): void => {
      if (settled || outcome === null || pending > 0) return
      settled = true
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      // Destroying an undici body early emits an abort error nobody needs.
      body.on('error', () => {})
      for (const t of taken.splice(0)) copies.give(t.chunk)
      if (outcome.err === undefined) resolve()
      else reject(outcome.err)
    }
    const finish = (err?: unknown): void => {
      if (outcome !== null) return
      outcome = err === undefined ? {} : { err }
      settle()
    }
    // A body that delivered all it announced finishes on its 'end' event: undici frees the
    // connection just before it, while finishing sooner would make the next request open another.
    const done = (): void => {
      if (off >= bodyEnd && !host.settled() && !ended) {
        // Perhaps paused for pending writes: let it flow to its end.
        body.resume()
        return
      }
      finish()
      discardBody(body)
    }
    /** Lands what was written, in order; true once the assignment needs no more. */
    const land = (): boolean => {
      while (taken.length > 0 && (taken[0] as Taken).written) {
        const t = taken.shift() as Taken
        waiting -= t.chunk.length
        // Bytes past an end that moved while they were written: the new owner of that range lands them.
        const chunk = t.at + t.chunk.length > a.end ? t.chunk.subarray(0, Math.max(0, a.end - t.at)) : t.chunk
        if (t.at === a.pos && chunk.length > 0 && !host.settled()) {
          a.pos += chunk.length
          a.lastProgress = Date.now()
          raceWon(a)
          host.landed(t.at, chunk)
        }
        copies.give(t.chunk)
        if (outcome === null && host.enough()) {
          done()
          return true
        }
      }
      return false
    }
    const onData = (raw: Buffer): void => {
      if (outcome !== null) return
      host.received(raw.length)
      let chunk = raw
      if (off < next) {
        const skip = Math.min(chunk.length, next - off)
        off += skip
        chunk = chunk.subarray(skip)
      }
      if (next + chunk.length > a.end) chunk = chunk.subarray(0, Math.max(0, a.end - next))
      if (chunk.length === 0 || host.settled()) {
        if (pending === 0 && host.enough()) done()
        return
      }
      const behind = chunk.length >= WRITE_BEHIND_MIN && res.unverified !== true
      // A volatile chunk is copied if it outlives this listener: written on the thread pool, or landing
      // only after chunks before it that still are.
      if (res.volatile === true && (behind || !host.writer.synchronous || taken.length > 0)) {
        const copy = copies.take(chunk.length)
        chunk.copy(copy)
        chunk = copy
      }
      const t: Taken = { chunk, at: next, written: false }
      next += chunk.length
      off += chunk.length
      taken.push(t)
      waiting += chunk.length
      let now: boolean
      try {
        now = host.writer.write(chunk, t.at, (err) => {
          pending--
          // A failed write never lands, nor anything after it.
          if (err !== null) { finish(writeError(err)); discardBody(body); settle(); return }
          t.written = true
          if (land() || outcome !== null) { settle(); return }
          if (ended) { if (pending === 0) finish() } else if (pending < WRITES_BEHIND && waiting < MAX_WAITING) body.resume()
        }, { behind })
      } catch (err) {
        taken.pop()
        waiting -= chunk.length
        finish(writeError(err))
        discardBody(body)
        return
      }
      if (!now) pending++
      else {
        t.written = true
        if (land()) return
      }
      if (pending >= WRITES_BEHIND || waiting >= MAX_WAITING) body.pause()
    }
    const onEnd = (): void => {
      if (pending > 0) ended = true
      else finish()
    }
    const onError = (err: unknown): void => { finish(err) }
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onError)
  })
  return { off, bodyEnd }
}

/** A write the disk refused (full, read-only, an I/O error): no retry; readers fall back to the upstream. */
function writeError (err: unknown): unknown {
  return cacheDiskError(err) ?? err
}
