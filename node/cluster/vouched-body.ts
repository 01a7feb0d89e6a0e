import type { KeyObject } from 'node:crypto'
import { timingSafeEqual } from 'node:crypto'
import { Transform } from 'node:stream'
import type { TransformCallback } from 'node:stream'
import { PIECE_HASH_UNIT } from '../../protocol/pieces.ts'
import { frameEnd, frameMac, VOUCH_FRAME, VOUCH_TAG_BYTES } from '../../protocol/vouch.ts'
import type { FrameMac } from '../../protocol/vouch.ts'
import { coalesce, PeerCorruptError } from './verifying-body.ts'

export interface VouchInit {
  /** The response's key (protocol/vouch.ts responseKey). */
  key: KeyObject
  /** sha256 hex of the blob. */
  digest: string
  /** The range [start, end) the body carries. */
  start: number
  end: number
}

/** The tag of the range's frame [frameStart, end) (frames are numbered from the range's start). */
export function frameMacOf (init: VouchInit, frameStart: number, end: number): FrameMac {
  return frameMac(init.key, init.digest, (frameStart - init.start) / VOUCH_FRAME, frameStart, end)
}

/**
 * The reading side: holds each frame (at most one, VOUCH_FRAME bytes) until its tag arrived and
 * matched, then passes its bytes on. A wrong tag fails the stream with PeerCorruptError; a body that
 * ends mid-frame passes nothing of that frame (the download asks for the rest again).
 */
export class VouchedBody extends Transform {
  private readonly init: VouchInit
  private pos: number
  private frameStart: number
  private mac: FrameMac | null = null
  private held: Buffer[] = []
  private readonly tag = Buffer.alloc(VOUCH_TAG_BYTES)
  private tagBytes = 0
  private readonly onBytes: ((n: number) => void) | undefined

  constructor (init: VouchInit & { onBytes?: (n: number) => void }) {
    super()
    this.init = init
    this.onBytes = init.onBytes
    this.pos = init.start
    this.frameStart = init.start
  }

  /** Drops the body (the interface the download expects of a response body). */
  async dump (): Promise<void> {
    this.on('error', () => {})
    this.destroy()
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off = 0
    while (off < chunk.length) {
      if (this.pos >= this.init.end && this.tagBytes === VOUCH_TAG_BYTES) { cb(new PeerCorruptError(this.piece())); return }
      const end = frameEnd(this.init.start, this.init.end, this.frameStart)
      if (this.pos < end) {
        const take = Math.min(end - this.pos, chunk.length - off)
        const part = take === chunk.length ? chunk : chunk.subarray(off, off + take)
        this.mac ??= frameMacOf(this.init, this.frameStart, end)
        this.mac.update(part)
        this.held.push(part)
        this.pos += take
        off += take
        continue
      }
      const take = Math.min(VOUCH_TAG_BYTES - this.tagBytes, chunk.length - off)
      chunk.copy(this.tag, this.tagBytes, off, off + take)
      this.tagBytes += take
      off += take
      if (this.tagBytes === VOUCH_TAG_BYTES) {
        const err = this.release(end)
        if (err !== null) { cb(err); return }
      }
    }
    cb()
  }

  private piece (): number {
    return Math.floor(this.frameStart / PIECE_HASH_UNIT)
  }

  private release (end: number): Error | null {
    const expected = (this.mac ?? frameMacOf(this.init, this.frameStart, end)).digest()
    this.mac = null
    if (!timingSafeEqual(expected, this.tag)) return new PeerCorruptError(this.piece())
    let n = 0
    for (const part of coalesce(this.held)) { this.push(part); n += part.length }
    this.onBytes?.(n)
    this.held = []
    this.frameStart = end
    if (end < this.init.end) this.tagBytes = 0
    return null
  }
}
