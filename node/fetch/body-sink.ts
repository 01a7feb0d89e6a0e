import { DiskFullError, UpstreamProtocolError } from '../errors.ts'
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
 * Streams a response body to its offsets in the temp file, advancing `a.pos`. Chunks are taken one by
 * one from 'data' events (async iteration would concatenate buffered chunks into fresh allocations)
 * and written at their offset as they come; only a write that goes to the thread pool pauses the body
 * meanwhile. Bytes before `a.pos` (a resumed 200) are skipped. Resolves with the body offset reached
 * and the end the body announced (Infinity for a 200).
 */
export async function drainBody (res: SourceResponse, a: Assignment, host: SinkHost): Promise<{ off: number, bodyEnd: number }> {
  const body = res.body
  let off = res.status === 206 && res.contentRange !== null ? res.contentRange.start : 0
  const bodyEnd = res.status === 206 && res.contentRange !== null ? res.contentRange.end + 1 : Number.POSITIVE_INFINITY
  if (body.destroyed) throw body.errored ?? new UpstreamProtocolError('Upstream body ended early')
  await new Promise<void>((resolve, reject) => {
    let finished = false
    // A chunk's write is on the thread pool (the body is paused meanwhile)…
    let writing = false
    // …when the body ended: its 'end' comes even while paused, so the finish waits for that write.
    let ended = false
    const finish = (err?: unknown): void => {
      if (finished) return
      finished = true
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
      // Destroying an undici body early emits an abort error nobody needs.
      body.on('error', () => {})
      if (err === undefined) resolve()
      else reject(err)
    }
    // A body that delivered all it announced finishes on its 'end' event: undici frees the
    // connection just before it, while finishing sooner would make the next request open another.
    const done = (): void => {
      if (off >= bodyEnd && !host.settled() && !ended) {
        // Paused during a thread-pool write: let it flow to its end.
        body.resume()
        return
      }
      finish()
      discardBody(body)
    }
    const landed = (chunk: Buffer, at: number): boolean => {
      off += chunk.length
      a.pos += chunk.length
      a.lastProgress = Date.now()
      raceWon(a)
      host.landed(at, chunk)
      if (!host.enough()) return false
      done()
      return true
    }
    const onData = (raw: Buffer): void => {
      host.received(raw.length)
      let chunk = raw
      if (off < a.pos) {
        const skip = Math.min(chunk.length, a.pos - off)
        off += skip
        chunk = chunk.subarray(skip)
      }
      if (a.pos + chunk.length > a.end) chunk = chunk.subarray(0, Math.max(0, a.end - a.pos))
      if (chunk.length === 0 || host.settled()) {
        if (host.enough()) done()
        return
      }
      const at = a.pos
      // A write that goes to the thread pool outlives this listener: a volatile chunk must be copied.
      if (res.volatile === true && !host.writer.synchronous) chunk = Buffer.from(chunk)
      let now: boolean
      try {
        now = host.writer.write(chunk, at, (err) => {
          writing = false
          if (err !== null) { finish(writeError(err)); discardBody(body); return }
          if (landed(chunk, at)) return
          if (ended) finish()
          else body.resume()
        })
      } catch (err) {
        finish(writeError(err))
        discardBody(body)
        return
      }
      if (now) landed(chunk, at)
      else {
        writing = true
        body.pause()
      }
    }
    const onEnd = (): void => {
      if (writing) ended = true
      else finish()
    }
    const onError = (err: unknown): void => { finish(err) }
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onError)
  })
  return { off, bodyEnd }
}

/** ENOSPC/EDQUOT from a write: the disk is full (no retry; readers fall back to the upstream). */
function writeError (err: unknown): unknown {
  const code = (err as { code?: string } | null)?.code
  return code === 'ENOSPC' || code === 'EDQUOT' ? new DiskFullError(undefined, { cause: err }) : err
}
