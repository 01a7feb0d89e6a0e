import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
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
  /** A unit matched and all of it was passed on (the download can take its hash as known). */
  onUnit?: (index: number, hash: Buffer) => void
}

/**
 * Passes on a peer's bytes one piece-hash unit at a time, each only after its hash matched the list:
 * no unverified byte ever reaches the download. The unit is hashed as its chunks arrive and the chunks
 * themselves are passed on (small ones joined, see coalesce); at most one unit (1 MiB) is held. A mismatch fails the stream
 * with PeerCorruptError.
 */
export class VerifyingBody extends Transform {
  private readonly init: VerifyingBodyInit
  private pos: number
  private unit: Buffer[] = []
  private unitBytes = 0
  private hash: Hash | null = null

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
      const part = take === chunk.length ? chunk : chunk.subarray(off, off + take)
      this.hash ??= createHash('sha256')
      this.hash.update(part)
      this.unit.push(part)
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
    const digest = (this.hash as Hash).digest()
    this.hash = null
    if (!digest.equals(pieceHashAt(this.init.list, index))) return new PeerCorruptError(index)
    if (this.pos >= this.init.from && this.pos + this.unitBytes <= this.init.to) this.init.onUnit?.(index, digest)
    let at = this.pos
    const parts = this.unit
    this.pos += this.unitBytes
    this.unit = []
    this.unitBytes = 0
    // Only [from, to) goes on: the aligned span's head and tail were fetched to hash their units.
    const out: Buffer[] = []
    for (const part of parts) {
      const a = Math.max(at, this.init.from)
      const b = Math.min(at + part.length, this.init.to)
      if (b > a) {
        this.init.onBytes?.(b - a)
        out.push(b - a === part.length ? part : part.subarray(a - at, b - at))
      }
      at += part.length
    }
    for (const buf of coalesce(out)) this.push(buf)
    return null
  }
}

/** Bytes per buffer passed on when a peer's small chunks are joined. */
const JOINED = 256 << 10

/**
 * Joins runs of small chunks into buffers of up to JOINED bytes. TLS hands bytes over in 16 KiB
 * records; every chunk costs the download a write and its bookkeeping, which is worth one copy.
 */
export function coalesce (parts: Buffer[]): Buffer[] {
  if (parts.length < 2) return parts
  const out: Buffer[] = []
  let run: Buffer[] = []
  let runBytes = 0
  const flush = (): void => {
    if (run.length === 1) out.push(run[0] as Buffer)
    else if (run.length > 1) out.push(Buffer.concat(run, runBytes))
    run = []
    runBytes = 0
  }
  for (const part of parts) {
    if (runBytes + part.length > JOINED) flush()
    run.push(part)
    runBytes += part.length
  }
  flush()
  return out
}
