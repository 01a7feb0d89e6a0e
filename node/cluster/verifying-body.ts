import { createHash } from 'node:crypto'
import { Transform } from 'node:stream'
import type { TransformCallback } from 'node:stream'
import { PIECE_HASH_UNIT, pieceHashAt } from '../../protocol/pieces.ts'

/** A peer sent bytes whose piece hash is not the one in the blob's list. */
export class PeerCorruptError extends Error {
  readonly code = 'ERR_PEER_CORRUPT'
  readonly piece: number
  constructor (piece: number) {
    super(`piece ${piece} from a peer does not match its hash`)
    this.name = 'PeerCorruptError'
    this.piece = piece
  }
}

export interface VerifyingBodyInit {
  /** Piece-hash list of the blob. */
  list: Uint8Array
  size: number
  /** First byte of the incoming (unit-aligned) span. */
  spanStart: number
  /** Bytes [from, to) are passed on; the rest of the span is only hashed. */
  from: number
  to: number
  onBytes?: (n: number) => void
}

/**
 * Passes on a peer's bytes one piece-hash unit at a time, each only after its hash matched the list:
 * no unverified byte ever reaches the download. Holds at most one unit (1 MiB) in memory. A mismatch
 * fails the stream with PeerCorruptError.
 */
export class VerifyingBody extends Transform {
  private readonly init: VerifyingBodyInit
  private pos: number
  private unit: Buffer[] = []
  private unitBytes = 0

  constructor (init: VerifyingBodyInit) {
    super({ readableHighWaterMark: 1 << 20 })
    this.init = init
    this.pos = init.spanStart
  }

  /** Drops the body (the interface the download expects of a response body). */
  async dump (): Promise<void> {
    this.on('error', () => {})
    this.destroy()
  }

  private unitEnd (): number {
    const index = Math.floor(this.pos / PIECE_HASH_UNIT)
    return Math.min(this.init.size, (index + 1) * PIECE_HASH_UNIT)
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off = 0
    while (off < chunk.length) {
      const need = this.unitEnd() - this.pos - this.unitBytes
      const take = Math.min(need, chunk.length - off)
      this.unit.push(chunk.subarray(off, off + take))
      this.unitBytes += take
      off += take
      if (this.unitBytes === this.unitEnd() - this.pos) {
        const err = this.flushUnit()
        if (err !== null) { cb(err); return }
      }
    }
    cb()
  }

  override _flush (cb: TransformCallback): void {
    // A span that ended mid-unit is incomplete: nothing of it is passed on (the download retries).
    cb()
  }

  private flushUnit (): Error | null {
    const index = Math.floor(this.pos / PIECE_HASH_UNIT)
    const h = createHash('sha256')
    for (const part of this.unit) h.update(part)
    const expected = pieceHashAt(this.init.list, index)
    if (!h.digest().equals(expected)) return new PeerCorruptError(index)
    const unitStart = this.pos
    const data = this.unit.length === 1 ? this.unit[0] as Buffer : Buffer.concat(this.unit)
    this.pos += this.unitBytes
    this.unit = []
    this.unitBytes = 0
    const a = Math.max(unitStart, this.init.from)
    const b = Math.min(this.pos, this.init.to)
    if (b > a) {
      this.init.onBytes?.(b - a)
      this.push(data.subarray(a - unitStart, b - unitStart))
    }
    return null
  }
}
