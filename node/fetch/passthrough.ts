import { Readable } from 'node:stream'
import { UpstreamProtocolError } from '../errors.ts'
import { discardBody } from './upstream-source.ts'
import type { Source, SourceResponse } from './upstream-source.ts'
import type { ActiveDownload, BlobHandle } from './acquire-types.ts'
import type { BlobMeta } from './response-meta.ts'

/** A pass-through as /health lists it while it streams. */
export type PassingThrough = Omit<ActiveDownload, 'started_at'> & { startedAt: number }

export interface PassThroughInit {
  key: string
  url: string
  meta: BlobMeta
  source: Source
  /** The download's first response: only the caller that started it owns it; joiners open their own. */
  first: SourceResponse | null
  onBytes: (n: number) => void
  /** Lists a stream while it runs (for /health). */
  passing: Set<PassingThrough>
}

/** A handle on a file passed through uncached: each open streams from the upstream (see openPassthrough). */
export function passThroughHandle (init: PassThroughInit): BlobHandle {
  let firstLeft = init.first
  return {
    kind: 'blob',
    from: 'passthrough',
    meta: init.meta,
    open: (start, end) => {
      const first = firstLeft
      firstLeft = null
      const shown: PassingThrough = { key: init.key, url: init.url, size: init.meta.size, received: 0, written: 0, connections: 1, startedAt: Date.now(), state: 'passthrough' }
      init.passing.add(shown)
      const stream = openPassthrough(init.source, first, start, end, n => { shown.received += n; init.onBytes(n) })
      stream.once('close', () => { init.passing.delete(shown) })
      return stream
    },
    release: () => {
      if (firstLeft !== null) discardBody(firstLeft.body)
      firstLeft = null
    }
  }
}

/**
 * Streams [start, end) straight from the upstream without caching (a file larger than the cache, or
 * no room on disk). Uses the first response when it starts at `start`, then one Range GET for the
 * rest, resuming at the last byte if the connection breaks. Backpressure flows to the upstream socket.
 */
export function openPassthrough (source: Source, first: SourceResponse | null, start: number, end: number, onBytes: (n: number) => void): Readable {
  const ac = new AbortController()
  async function * gen (): AsyncGenerator<Buffer> {
    let pos = start
    let res: SourceResponse | null = first !== null && (first.contentRange?.start ?? 0) === start ? first : null
    if (res === null && first !== null) discardBody(first.body)
    let failures = 0
    try {
      while (pos < end) {
        /** Bytes of the body before `pos` (an upstream without Range support sends the whole file). */
        let skip = 0
        if (res === null) {
          res = await source.fetch({ start: pos, end: end - 1 }, { signal: ac.signal })
          if (res.status === 200) {
            skip = pos
          } else if (res.status !== 206 || res.contentRange?.start !== pos) {
            discardBody(res.body)
            throw new UpstreamProtocolError('Unexpected upstream response to a range request', { detail: { status: res.status } })
          }
        }
        const before = pos
        try {
          for await (const body of res.body as AsyncIterable<Buffer>) {
            onBytes(body.length)
            let chunk = body
            if (skip > 0) {
              const dropped = Math.min(skip, chunk.length)
              skip -= dropped
              chunk = chunk.subarray(dropped)
              if (chunk.length === 0) continue
            }
            const take = Math.min(chunk.length, end - pos)
            pos += take
            yield take === chunk.length ? chunk : chunk.subarray(0, take)
            if (pos >= end) break
          }
        } catch (err) {
          if (pos === before && ++failures > 3) throw err
        } finally {
          discardBody(res.body)
          res = null
        }
        if (pos > before) failures = 0
      }
    } finally {
      ac.abort()
    }
  }
  return Readable.from(gen(), { objectMode: false })
}
