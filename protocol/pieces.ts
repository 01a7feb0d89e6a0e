import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'

/**
 * Piece hashes of a blob: sha256 of every PIECE_HASH_UNIT-sized slice (the last may be shorter), listed
 * back to back (32 bytes each). Peers' bytes are checked slice by slice against the list before they
 * reach the download, so a corrupt peer is caught within one MiB. A blob of one slice has its own
 * digest as its list.
 */
export const PIECE_HASH_UNIT = 1 << 20
export const PIECE_HASH_BYTES = 32

export function pieceHashCount (size: number): number {
  return Math.max(1, Math.ceil(size / PIECE_HASH_UNIT))
}

export function pieceListBytes (size: number): number {
  return pieceHashCount(size) * PIECE_HASH_BYTES
}

/** The unit-aligned span [start, end) that covers [from, to) of a blob of `size`. */
export function alignedSpan (from: number, to: number, size: number): { start: number, end: number } {
  const start = Math.floor(from / PIECE_HASH_UNIT) * PIECE_HASH_UNIT
  const end = Math.min(size, Math.ceil(to / PIECE_HASH_UNIT) * PIECE_HASH_UNIT)
  return { start, end }
}

/**
 * Incrementally builds a list from the blob's bytes in order. Units whose hash was already checked
 * elsewhere (a peer's unit that matched the holder's list, see `known`) are counted, not hashed again.
 */
export class PieceHasher {
  private readonly parts: Uint8Array[] = []
  private readonly knownHashes = new Map<number, Uint8Array>()
  private hash: Hash | null = null
  /** The current unit's hash is known: its bytes are only counted. */
  private skipping: Uint8Array | null = null
  private filled = 0

  /**
   * Unit `index` is known to hash to `hash`. Used only when its first byte is still to come; a unit
   * already begun is hashed to its end anyway.
   */
  known (index: number, hash: Uint8Array): void {
    if (index > this.parts.length || (index === this.parts.length && this.filled === 0)) this.knownHashes.set(index, hash)
  }

  update (chunk: Uint8Array): void {
    let off = 0
    while (off < chunk.length) {
      if (this.filled === 0) this.beginUnit()
      const take = Math.min(chunk.length - off, PIECE_HASH_UNIT - this.filled)
      if (this.skipping === null) (this.hash as Hash).update(off === 0 && take === chunk.length ? chunk : chunk.subarray(off, off + take))
      this.filled += take
      off += take
      if (this.filled === PIECE_HASH_UNIT) this.cut()
    }
  }

  /** The list; an empty blob has the hash of nothing as its one entry. */
  digest (): Buffer {
    if (this.filled > 0 || this.parts.length === 0) {
      if (this.filled === 0) this.beginUnit()
      this.cut()
    }
    return Buffer.concat(this.parts)
  }

  private beginUnit (): void {
    const index = this.parts.length
    this.skipping = this.knownHashes.get(index) ?? null
    this.knownHashes.delete(index)
    if (this.skipping === null) this.hash ??= createHash('sha256')
  }

  private cut (): void {
    if (this.skipping !== null) this.parts.push(this.skipping)
    else {
      this.parts.push((this.hash as Hash).digest())
      this.hash = null
    }
    this.skipping = null
    this.filled = 0
  }
}

export function pieceHashAt (list: Uint8Array, index: number): Uint8Array {
  return list.subarray(index * PIECE_HASH_BYTES, (index + 1) * PIECE_HASH_BYTES)
}
