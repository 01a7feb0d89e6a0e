import { VOUCH_FRAME } from '../../protocol/vouch.ts'
import type { BufferPool } from '../fetch/buffer-pool.ts'
import { DerivedBody } from '../upstream/derived-body.ts'
import type { VolatileBody } from '../upstream/volatile-body.ts'
import { FrameReader } from './vouched-body.ts'
import type { FrameHooks, VouchInit } from './vouched-body.ts'

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
  private readonly frames: FrameReader
  private readonly pool: BufferPool
  private readonly onBytes: ((n: number) => void) | undefined
  private readonly onProgress: (() => void) | undefined
  private frame: Buffer | null = null
  private readonly hooks: FrameHooks = {
    bytes: (part, at) => {
      if (this.destroyed) return
      this.frame ??= this.pool.take(VOUCH_FRAME)
      part.copy(this.frame, at)
    },
    frame: (length) => {
      if (this.destroyed) return
      this.onBytes?.(length)
      if (length > 0) this.pass((this.frame as Buffer).subarray(0, length))
    }
  }

  constructor (raw: VolatileBody, init: VouchInit & { onBytes?: (n: number) => void, onProgress?: () => void }, pool: BufferPool) {
    super(raw)
    this.frames = new FrameReader(init)
    this.pool = pool
    this.onBytes = init.onBytes
    this.onProgress = init.onProgress
  }

  protected take (chunk: Buffer): void {
    this.onProgress?.()
    const err = this.frames.feed(chunk, this.hooks)
    if (err !== null) this.destroy(err)
  }

  protected override release (): void {
    if (this.frame !== null) this.pool.give(this.frame)
    this.frame = null
  }
}
