import type { Hash } from 'node:crypto'
import { DigestMismatchError } from '../errors.ts'
import type { BlobChunks } from './blob-chunks.ts'
import { BufferPool } from './buffer-pool.ts'
import { digestLabel } from './identity.ts'
import type { ExpectedDigest } from './identity.ts'
import { createDigest } from './ordered-hasher.ts'
import type { RangeTarget } from './passthrough-range.ts'

/** One range of a pass-through, landing in a lent buffer while the ranges before it are read. */
interface HeldRange extends RangeTarget {
  /** Bytes handed to the reader. */
  given: number
  /** Views of `buf` handed out and not yet recycled. */
  lent: number
  error: unknown
  wake: (() => void) | null
}

/**
 * Range buffers shared by every pass-through: one stream's ranges reuse them range after range, and the
 * next stream reuses them too (buffers of finished streams would otherwise stay resident until a full
 * collection). One stream holds at most 16 MiB of them (see passthroughPlan).
 */
const rangeBuffers = new BufferPool({ maxIdleBytes: 16 << 20 })

export interface PassthroughChunksInit {
  start: number
  end: number
  /** The first range's end: the first response's (it is read whole), else start + pieceSize. */
  headEnd: number
  pieceSize: number
  /** Ranges fetched at once. */
  connections: number
  /** Fills a range with the file's bytes, resuming a broken connection (the first range takes the first response). */
  fillRange: (into: RangeTarget, first: boolean, signal: AbortSignal) => Promise<void>
  /** The whole file's digest, when these are all its bytes: its last bytes are given only once it matched. */
  gate?: { expected: ExpectedDigest, size: number } | null
}

/**
 * A pass-through over several connections as BlobChunks: each range lands in a buffer of rangeBuffers,
 * and the HTTP layer gives each view back once the socket wrote it. The ranges ahead of the reader wait
 * in those buffers, reused range after range, instead of in the socket reads' own buffers (which now
 * live for microseconds: young garbage a scavenge frees): buffers held for the reader outlived young
 * collections, filled the old generation and cost a full collection every dozen MiB. The range the
 * reader is at is handed out as it lands; a range that failed fails the stream at its turn.
 */
export function passthroughChunks (init: PassthroughChunksInit): BlobChunks {
  const { start, end, pieceSize } = init
  const ranges: HeldRange[] = []
  const owner = new Map<Buffer, HeldRange>()
  const gate = init.gate != null && start === 0 && end === init.gate.size ? init.gate.expected : null
  const hash: Hash | null = gate === null ? null : createDigest(gate.algorithm, end)
  let next = start
  let closed = false

  const release = (r: HeldRange): void => {
    // Only whole pieces are worth keeping: the first range and the last are of their own sizes.
    if (r.lent === 0 && r.given === r.buf.length && r.buf.length === pieceSize) rangeBuffers.give(r.buf)
  }
  const stopped = new AbortController()
  const read = async (r: HeldRange, first: boolean): Promise<void> => {
    try {
      await init.fillRange(r, first, stopped.signal)
    } catch (err) {
      r.error = err
    } finally {
      r.wake?.()
    }
  }
  const fill = (): void => {
    while (!closed && ranges.length < init.connections && next < end) {
      const rangeEnd = next === start ? init.headEnd : Math.min(end, next + pieceSize)
      const r: HeldRange = { start: next, buf: rangeBuffers.take(rangeEnd - next), filled: 0, given: 0, lent: 0, error: null, wake: null, landed: () => { r.wake?.() } }
      ranges.push(r)
      void read(r, next === start)
      next = rangeEnd
    }
  }

  fill()
  return {
    next: async () => {
      for (;;) {
        const r = ranges[0]
        if (r === undefined || closed) return null
        if (r.given < r.filled) {
          const view = r.buf.subarray(r.given, r.filled)
          r.given = r.filled
          r.lent++
          owner.set(view, r)
          if (r.given === r.buf.length) {
            ranges.shift()
            fill()
          }
          if (gate !== null && hash !== null) {
            hash.update(view)
            if (r.start + r.given === end && hash.digest('hex') !== gate.hex) throw new DigestMismatchError(undefined, { detail: { expected: digestLabel(gate) } })
          }
          return view
        }
        if (r.error !== null) throw r.error
        await new Promise<void>(resolve => { r.wake = resolve })
        r.wake = null
      }
    },
    recycle: (view) => {
      const r = owner.get(view)
      if (r === undefined) return
      owner.delete(view)
      r.lent--
      release(r)
    },
    close: () => {
      if (closed) return
      closed = true
      stopped.abort()
      ranges.length = 0
    }
  }
}
