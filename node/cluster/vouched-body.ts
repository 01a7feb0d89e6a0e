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

/** What a FrameReader finds in a vouched body. */
export interface FrameHooks {
  /** Bytes of the current frame, `at` bytes into it (valid during this call only). */
  bytes: (part: Buffer, at: number) => void
  /** The current frame, `length` bytes, matched its tag. */
  frame: (length: number) => void
}

/**
 * The reading side's parse of a vouched body: splits it into each frame's bytes and its tag, and checks
 * the tag. The callers decide where a frame's bytes wait until it matched.
 */
export class FrameReader {
  private readonly init: VouchInit
  private pos: number
  private frameStart: number
  private mac: FrameMac | null = null
  private readonly tag = Buffer.alloc(VOUCH_TAG_BYTES)
  private tagBytes = 0

  constructor (init: VouchInit) {
    this.init = init
    this.pos = init.start
    this.frameStart = init.start
  }

  /** Takes `chunk`; a PeerCorruptError when a tag does not match or bytes come after the last one. */
  feed (chunk: Buffer, hooks: FrameHooks): PeerCorruptError | null {
    let off = 0
    while (off < chunk.length) {
      if (this.pos >= this.init.end && this.tagBytes === VOUCH_TAG_BYTES) return new PeerCorruptError(this.piece())
      const end = frameEnd(this.init.start, this.init.end, this.frameStart)
      if (this.pos < end) {
        const take = Math.min(end - this.pos, chunk.length - off)
        const part = take === chunk.length ? chunk : chunk.subarray(off, off + take)
        this.mac ??= frameMacOf(this.init, this.frameStart, end)
        this.mac.update(part)
        hooks.bytes(part, this.pos - this.frameStart)
        this.pos += take
        off += take
        continue
      }
      const take = Math.min(VOUCH_TAG_BYTES - this.tagBytes, chunk.length - off)
      chunk.copy(this.tag, this.tagBytes, off, off + take)
      this.tagBytes += take
      off += take
      if (this.tagBytes < VOUCH_TAG_BYTES) continue
      const expected = (this.mac ?? frameMacOf(this.init, this.frameStart, end)).digest()
      this.mac = null
      if (!timingSafeEqual(expected, this.tag)) return new PeerCorruptError(this.piece())
      const length = end - this.frameStart
      this.frameStart = end
      if (end < this.init.end) this.tagBytes = 0
      hooks.frame(length)
    }
    return null
  }

  private piece (): number {
    return Math.floor(this.frameStart / PIECE_HASH_UNIT)
  }
}

/**
 * The reading side as a stream (undici bodies): holds each frame (at most one, VOUCH_FRAME bytes) until
 * its tag arrived and matched, then passes its bytes on. A wrong tag fails the stream with
 * PeerCorruptError; a body that ends mid-frame passes nothing of that frame (the download asks for the
 * rest again).
 */
export class VouchedBody extends Transform {
  private readonly frames: FrameReader
  private held: Buffer[] = []
  private readonly onBytes: ((n: number) => void) | undefined
  private readonly hooks: FrameHooks = {
    bytes: (part) => { this.held.push(part) },
    frame: () => {
      let n = 0
      for (const part of coalesce(this.held)) { this.push(part); n += part.length }
      this.onBytes?.(n)
      this.held = []
    }
  }

  constructor (init: VouchInit & { onBytes?: (n: number) => void }) {
    super()
    this.frames = new FrameReader(init)
    this.onBytes = init.onBytes
  }

  /** Drops the body (the interface the download expects of a response body). */
  async dump (): Promise<void> {
    this.on('error', () => {})
    this.destroy()
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(this.frames.feed(chunk, this.hooks))
  }
}
