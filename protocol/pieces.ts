import { createHash } from 'node:crypto'

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

/** Incrementally builds a list from the blob's bytes in order. */
export class PieceHasher {
  private readonly parts: Buffer[] = []
  private hash = createHash('sha256')
  private filled = 0

  update (chunk: Uint8Array): void {
    let off = 0
    while (off < chunk.length) {
      const take = Math.min(chunk.length - off, PIECE_HASH_UNIT - this.filled)
      this.hash.update(chunk.subarray(off, off + take))
      this.filled += take
      off += take
      if (this.filled === PIECE_HASH_UNIT) this.cut()
    }
  }

  /** The list; an empty blob has the hash of nothing as its one entry. */
  digest (): Buffer {
    if (this.filled > 0 || this.parts.length === 0) this.cut()
    return Buffer.concat(this.parts)
  }

  private cut (): void {
    this.parts.push(this.hash.digest())
    this.hash = createHash('sha256')
    this.filled = 0
  }
}

export function pieceHashAt (list: Uint8Array, index: number): Uint8Array {
  return list.subarray(index * PIECE_HASH_BYTES, (index + 1) * PIECE_HASH_BYTES)
}
