import type { BlobChunks } from '../fetch/blob-chunks.ts'
import { frameEnd } from '../../protocol/vouch.ts'
import { frameMacOf } from './vouched-body.ts'
import type { FrameMac } from '../../protocol/vouch.ts'
import type { VouchInit } from './vouched-body.ts'

/**
 * The serving side of a vouched read (see protocol/vouch.ts) over recycled buffers: the range's bytes
 * with each frame's tag after it. A chunk that crosses a frame's end goes out as two views of its
 * buffer around the tag; the buffer goes back to `chunks` once every view of it was written.
 */
export function vouchingChunks (chunks: BlobChunks, init: VouchInit): BlobChunks {
  let pos = init.start
  let frameStart = init.start
  let mac: FrameMac | null = null
  const queue: Buffer[] = []
  const tags = new Set<Buffer>()
  /** Views of each lent buffer still out (by the buffer's memory: views of one chunk share it). */
  const views = new Map<ArrayBufferLike, number>()

  const split = (chunk: Buffer): void => {
    let parts = 0
    for (let off = 0; off < chunk.length;) {
      const end = frameEnd(init.start, init.end, frameStart)
      const take = Math.min(end - pos, chunk.length - off)
      if (take <= 0) throw new RangeError('more bytes than the range holds')
      const part = take === chunk.length ? chunk : chunk.subarray(off, off + take)
      mac ??= frameMacOf(init, frameStart, end)
      mac.update(part)
      queue.push(part)
      parts++
      pos += take
      off += take
      if (pos === end) {
        const tag = mac.digest()
        tags.add(tag)
        queue.push(tag)
        mac = null
        frameStart = end
      }
    }
    views.set(chunk.buffer, (views.get(chunk.buffer) ?? 0) + parts)
  }

  return {
    next: async () => {
      if (queue.length === 0) {
        const chunk = await chunks.next()
        if (chunk === null) return null
        split(chunk)
      }
      return queue.shift() ?? null
    },
    recycle: (buf) => {
      if (tags.delete(buf)) return
      const left = (views.get(buf.buffer) ?? 1) - 1
      if (left > 0) { views.set(buf.buffer, left); return }
      views.delete(buf.buffer)
      chunks.recycle(buf)
    },
    close: () => { chunks.close() }
  }
}
