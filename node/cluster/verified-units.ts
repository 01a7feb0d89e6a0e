import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { PIECE_HASH_UNIT, pieceHashAt } from '../../protocol/pieces.ts'
import type { BufferPool } from '../fetch/buffer-pool.ts'
import { DerivedBody } from '../upstream/derived-body.ts'
import type { VolatileBody } from '../upstream/volatile-body.ts'
import { PeerCorruptError } from './verifying-body.ts'
import type { VerifyingBodyInit } from './verifying-body.ts'

/**
 * VerifyingBody's check over a volatile body (a peer's range read into RangeSockets' shared buffer):
 * each piece-hash unit is copied into one pooled 1 MiB buffer as it arrives and hashed, and passed on
 * only once its hash matched the list, as one volatile chunk (valid while the 'data' listener runs; the
 * buffer is refilled with the next unit). No unverified byte reaches the download; a mismatch fails the
 * body with PeerCorruptError; a span that ended mid-unit passes nothing of that unit (the download asks
 * again). Same surface as VolatileBody.
 */
export class VerifiedUnits extends DerivedBody {
  private readonly init: VerifyingBodyInit
  private readonly pool: BufferPool
  private unit: Buffer | null = null
  private unitBytes = 0
  private pos: number
  private hash: Hash | null = null

  constructor (raw: VolatileBody, init: VerifyingBodyInit, pool: BufferPool) {
    super(raw)
    this.init = init
    this.pool = pool
    this.pos = init.spanStart
  }

  private unitEnd (): number {
    const index = Math.floor(this.pos / PIECE_HASH_UNIT)
    return Math.min(this.init.size, (index + 1) * PIECE_HASH_UNIT)
  }

  protected take (chunk: Buffer): void {
    let off = 0
    while (off < chunk.length && !this.destroyed) {
      const need = this.unitEnd() - this.pos - this.unitBytes
      const n = Math.min(need, chunk.length - off)
      this.unit ??= this.pool.take(PIECE_HASH_UNIT)
      chunk.copy(this.unit, this.unitBytes, off, off + n)
      this.hash ??= createHash('sha256')
      this.hash.update(n === chunk.length ? chunk : chunk.subarray(off, off + n))
      this.unitBytes += n
      off += n
      if (this.unitBytes === this.unitEnd() - this.pos) this.passUnit()
    }
  }

  private passUnit (): void {
    const index = Math.floor(this.pos / PIECE_HASH_UNIT)
    const digest = (this.hash as Hash).digest()
    this.hash = null
    if (!digest.equals(pieceHashAt(this.init.list, index))) {
      this.destroy(new PeerCorruptError(index))
      return
    }
    const at = this.pos
    const bytes = this.unitBytes
    this.pos += bytes
    this.unitBytes = 0
    if (at >= this.init.from && at + bytes <= this.init.to) this.init.onUnit?.(index, digest)
    // Only [from, to) goes on: the aligned span's head and tail were fetched to hash their units.
    const a = Math.max(at, this.init.from)
    const b = Math.min(at + bytes, this.init.to)
    if (b > a) {
      this.init.onBytes?.(b - a)
      this.pass((this.unit as Buffer).subarray(a - at, b - at))
    }
  }

  protected override release (): void {
    if (this.unit !== null) this.pool.give(this.unit)
    this.unit = null
  }
}
