import { timingSafeEqual } from 'node:crypto'
import { PIECE_HASH_UNIT } from '../../protocol/pieces.ts'
import { frameEnd, VOUCH_FRAME, VOUCH_TAG_BYTES } from '../../protocol/vouch.ts'
import type { FrameMac } from '../../protocol/vouch.ts'
import type { BufferPool } from '../fetch/buffer-pool.ts'
import { DerivedBody } from '../upstream/derived-body.ts'
import type { VolatileBody } from '../upstream/volatile-body.ts'
import { PeerCorruptError } from './verifying-body.ts'
import { frameMacOf } from './vouched-body.ts'
import type { VouchInit } from './vouched-body.ts'

/** An open cluster's read of a peer's download in flight, over RangeSockets: chunks pass on as they come, counted. */
export class CountedBody extends DerivedBody {
  private readonly onChunk: (n: number) => void

  constructor (raw: VolatileBody, onChunk: (n: number) => void) {
    super(raw)
    this.onChunk = onChunk
  }

  protected take (chunk: Buffer): void {
    this.onChunk(chunk.length)
    this.pass(chunk)
  }
}

/**
 * VouchedBody over RangeSockets: each frame is copied into one pooled buffer as it arrives and passed on
 * as one chunk once its tag arrived and matched. A wrong tag fails the body with PeerCorruptError; a body
 * that ends mid-frame passes nothing of that frame (the download asks for the rest again).
 */
export class VouchedFrames extends DerivedBody {
  private readonly init: VouchInit
  private readonly pool: BufferPool
  private readonly onBytes: ((n: number) => void) | undefined
  private readonly onProgress: (() => void) | undefined
  private pos: number
  private frameStart: number
  private mac: FrameMac | null = null
  private frame: Buffer | null = null
  private readonly tag = Buffer.alloc(VOUCH_TAG_BYTES)
  private tagBytes = 0

  constructor (raw: VolatileBody, init: VouchInit & { onBytes?: (n: number) => void, onProgress?: () => void }, pool: BufferPool) {
    super(raw)
    this.init = init
    this.pool = pool
    this.onBytes = init.onBytes
    this.onProgress = init.onProgress
    this.pos = init.start
    this.frameStart = init.start
  }

  protected take (chunk: Buffer): void {
    this.onProgress?.()
    let off = 0
    while (off < chunk.length && !this.destroyed) {
      if (this.pos >= this.init.end && this.tagBytes === VOUCH_TAG_BYTES) { this.destroy(new PeerCorruptError(this.piece())); return }
      const end = frameEnd(this.init.start, this.init.end, this.frameStart)
      if (this.pos < end) {
        const n = Math.min(end - this.pos, chunk.length - off)
        this.frame ??= this.pool.take(VOUCH_FRAME)
        chunk.copy(this.frame, this.pos - this.frameStart, off, off + n)
        this.mac ??= frameMacOf(this.init, this.frameStart, end)
        this.mac.update(n === chunk.length ? chunk : chunk.subarray(off, off + n))
        this.pos += n
        off += n
        continue
      }
      const n = Math.min(VOUCH_TAG_BYTES - this.tagBytes, chunk.length - off)
      chunk.copy(this.tag, this.tagBytes, off, off + n)
      this.tagBytes += n
      off += n
      if (this.tagBytes === VOUCH_TAG_BYTES) this.passFrame(end)
    }
  }

  protected override release (): void {
    if (this.frame !== null) this.pool.give(this.frame)
    this.frame = null
  }

  private piece (): number {
    return Math.floor(this.frameStart / PIECE_HASH_UNIT)
  }

  private passFrame (end: number): void {
    const expected = (this.mac ?? frameMacOf(this.init, this.frameStart, end)).digest()
    this.mac = null
    if (!timingSafeEqual(expected, this.tag)) { this.destroy(new PeerCorruptError(this.piece())); return }
    const n = end - this.frameStart
    this.frameStart = end
    if (end < this.init.end) this.tagBytes = 0
    this.onBytes?.(n)
    if (n > 0) this.pass((this.frame as Buffer).subarray(0, n))
  }
}
