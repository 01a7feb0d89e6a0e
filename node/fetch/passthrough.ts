import { Readable } from 'node:stream'
import { UpstreamProtocolError } from '../errors.ts'
import { discardBody } from './upstream-source.ts'
import type { Source, SourceResponse } from './upstream-source.ts'

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
