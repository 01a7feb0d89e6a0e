import type { PartialEntry } from '../store/index-db.ts'
import { PieceBitmap } from '../store/partial.ts'
import { ByteRanges } from './byte-ranges.ts'
import { digestLabel } from './identity.ts'
import type { BlobIdentity } from './identity.ts'
import { pieceRange, piecesCoveredIn } from './pieces.ts'
import type { PiecePlan } from './pieces.ts'
import type { BlobMeta } from './response-meta.ts'

/** Ranges a progress entry records at most (a few per connection in practice). */
const MAX_SPANS = 1024

/**
 * What of a download's temp file is filled: the bytes on disk (`written`, in any ranges) and, once the
 * size is known, the pieces complete, which the progress entry records so a restart resumes from them.
 */
export class DiskPieces {
  readonly written = new ByteRanges()
  private planned: PiecePlan | null = null
  private bitmap: PieceBitmap | null = null

  /** Bytes written since the progress entry last recorded them (see `unrecorded`). */
  private sinceRecorded = 0

  /** The piece plan (null while the size is unknown). */
  get plan (): PiecePlan | null {
    return this.planned
  }

  /** Pieces complete. */
  get done (): number {
    return this.bitmap?.done ?? 0
  }

  /**
   * The temp file is open: its plan, and what an earlier run left in it: the pieces complete
   * (`resumed`) and the bytes of the others (`spans`).
   */
  start (plan: PiecePlan | null, resumed?: PieceBitmap, spans: ReadonlyArray<readonly [number, number]> = []): void {
    this.planned = plan
    if (plan === null) return
    this.bitmap = resumed ?? new PieceBitmap(plan.count)
    if (resumed === undefined) return
    for (let i = 0; i < plan.count; i++) {
      if (resumed.has(i)) this.written.add(...pieceRange(plan, i))
    }
    // From the index: anything that is not a pair of offsets within the file is ignored (fetched again).
    for (const span of Array.isArray(spans) ? spans as unknown[] : []) {
      if (!Array.isArray(span) || !Number.isSafeInteger(span[0]) || !Number.isSafeInteger(span[1])) continue
      const start = Math.max(0, span[0] as number)
      const end = Math.min(plan.size, span[1] as number)
      if (end > start) this.add(start, end)
    }
    this.sinceRecorded = 0
  }

  /** [at, end) is on disk; true when that completed a piece. */
  add (at: number, end: number): boolean {
    this.sinceRecorded += end - at
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

  /** Bytes written since the last progress entry was made: a piece's bytes are worth recording before it completes. */
  get unrecorded (): number {
    return this.sinceRecorded
  }

  /** The bytes on disk in pieces not complete, at most MAX_SPANS ranges (the largest: any left out are fetched again). */
  spans (): Array<[number, number]> {
    const plan = this.planned
    const bitmap = this.bitmap
    if (plan === null || bitmap === null) return []
    const out: Array<[number, number]> = []
    for (const [s, e] of this.written.list()) {
      let at = s
      while (at < e) {
        const piece = Math.floor(at / plan.pieceSize)
        const pieceEnd = Math.min(e, (piece + 1) * plan.pieceSize)
        if (!bitmap.has(piece)) {
          const last = out[out.length - 1]
          if (last !== undefined && last[1] === at) last[1] = pieceEnd
          else out.push([at, pieceEnd])
        }
        at = pieceEnd
      }
    }
    if (out.length <= MAX_SPANS) return out
    return out.sort((a, b) => (b[1] - b[0]) - (a[1] - a[0])).slice(0, MAX_SPANS).sort((a, b) => a[0] - b[0])
  }

  /** The progress entry as the download stands (null before its plan is known). */
  entry (d: { url: string, meta: BlobMeta, expected: BlobIdentity['expected'], startedAt: number, synced?: boolean }): PartialEntry | null {
    const pieces = this.pieces()
    if (this.planned === null || pieces === null) return null
    this.sinceRecorded = 0
    return {
      url: d.url,
      size: this.planned.size,
      pieceSize: pieces.pieceSize,
      bitmap: pieces.bitmap,
      spans: this.spans(),
      ...(d.synced === true ? { synced: true } : {}),
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
