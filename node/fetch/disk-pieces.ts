import type { PartialEntry } from '../store/index-db.ts'
import { PieceBitmap } from '../store/partial.ts'
import { ByteRanges } from './byte-ranges.ts'
import { digestLabel } from './identity.ts'
import type { BlobIdentity } from './identity.ts'
import { pieceRange, piecesCoveredIn } from './pieces.ts'
import type { PiecePlan } from './pieces.ts'
import type { BlobMeta } from './response-meta.ts'

/**
 * What of a download's temp file is filled: the bytes on disk (`written`, in any ranges) and, once the
 * size is known, the pieces complete, which the progress entry records so a restart resumes from them.
 */
export class DiskPieces {
  readonly written = new ByteRanges()
  private planned: PiecePlan | null = null
  private bitmap: PieceBitmap | null = null

  /** The piece plan (null while the size is unknown). */
  get plan (): PiecePlan | null {
    return this.planned
  }

  /** Pieces complete. */
  get done (): number {
    return this.bitmap?.done ?? 0
  }

  /** The temp file is open: its plan, and the pieces an earlier run left in it (`resumed`). */
  start (plan: PiecePlan | null, resumed?: PieceBitmap): void {
    this.planned = plan
    if (plan === null) return
    this.bitmap = resumed ?? new PieceBitmap(plan.count)
    if (resumed === undefined) return
    for (let i = 0; i < plan.count; i++) {
      if (resumed.has(i)) this.written.add(...pieceRange(plan, i))
    }
  }

  /** [at, end) is on disk; true when that completed a piece. */
  add (at: number, end: number): boolean {
    this.written.add(at, end)
    if (this.planned === null || this.bitmap === null) return false
    let changed = false
    for (const i of piecesCoveredIn(this.planned, this.written, at, end)) changed = this.bitmap.set(i) || changed
    return changed
  }

  /** Ranges whose bytes must be fetched again: off the disk's account, their pieces no longer complete. */
  drop (ranges: ReadonlyArray<readonly [number, number]>): void {
    for (const [s, e] of ranges) this.written.remove(s, e)
    if (this.planned === null) return
    this.bitmap = new PieceBitmap(this.planned.count)
    for (const i of piecesCoveredIn(this.planned, this.written, 0, this.planned.size)) this.bitmap.set(i)
  }

  /** The pieces on disk now, as the progress entry records them. */
  pieces (): { pieceSize: number, bitmap: string } | null {
    if (this.planned === null || this.bitmap === null) return null
    return { pieceSize: this.planned.pieceSize, bitmap: this.bitmap.toBase64() }
  }

  /** The progress entry as the download stands (null before its plan is known). */
  entry (d: { url: string, meta: BlobMeta, expected: BlobIdentity['expected'], startedAt: number }): PartialEntry | null {
    const pieces = this.pieces()
    if (this.planned === null || pieces === null) return null
    return {
      url: d.url,
      size: this.planned.size,
      pieceSize: pieces.pieceSize,
      bitmap: pieces.bitmap,
      contentType: d.meta.contentType,
      headers: d.meta.headers,
      validator: d.meta.validator,
      etag: d.meta.etag,
      expectedDigest: d.expected === null ? null : digestLabel(d.expected),
      startedAt: d.startedAt,
      updatedAt: Date.now()
    }
  }
}
