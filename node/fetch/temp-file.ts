import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import type { PartialEntry, Validator } from '../store/index-db.ts'
import { PieceBitmap } from '../store/partial.ts'
import type { ByteRanges } from './byte-ranges.ts'
import { pieceRange, planPieces } from './pieces.ts'
import type { PiecePlan } from './pieces.ts'
import { digestLabel } from './identity.ts'
import type { BlobIdentity } from './identity.ts'
import type { BlobMeta } from './response-meta.ts'

/** A download's temp file and its pieces (no plan when the size is unknown). */
export interface TempFile {
  fh: FileHandle
  plan: PiecePlan | null
  bitmap: PieceBitmap | null
}

/**
 * Opens a download's temp file: the one an earlier run left when `resume` is its (matching) progress
 * entry, its finished pieces marked in `written`; otherwise a fresh file of the final size.
 */
export async function openTempFile (path: string, resume: PartialEntry | undefined, size: number | null, written: ByteRanges, pieces: { chunkSize: number, concurrency: number }): Promise<TempFile> {
  if (resume !== undefined) {
    const fh = await open(path, 'r+')
    const plan = { size: resume.size, pieceSize: resume.pieceSize, count: Math.ceil(resume.size / resume.pieceSize) }
    const bitmap = PieceBitmap.fromBase64(plan.count, resume.bitmap)
    for (let i = 0; i < plan.count; i++) {
      if (bitmap.has(i)) written.add(...pieceRange(plan, i))
    }
    return { fh, plan, bitmap }
  }
  const fh = await open(path, 'w+')
  if (size === null) return { fh, plan: null, bitmap: null }
  await fh.truncate(size)
  const plan = planPieces(size, pieces.chunkSize, pieces.concurrency)
  return { fh, plan, bitmap: new PieceBitmap(plan.count) }
}

/** The first byte a progress entry has not got (where a resumed download asks first). */
export function firstMissing (partial: PartialEntry): number {
  const count = Math.ceil(partial.size / partial.pieceSize)
  const bm = PieceBitmap.fromBase64(count, partial.bitmap)
  for (let i = 0; i < count; i++) if (!bm.has(i)) return i * partial.pieceSize
  return 0
}

/** Whether an earlier run's progress entry belongs to the same file as the upstream serves now. */
export function resumes (partial: PartialEntry, size: number | null, validator: Validator): boolean {
  if (partial.size !== size) return false
  if (partial.validator.etag !== null && validator.etag !== null) return partial.validator.etag === validator.etag
  return partial.validator.lastModified === validator.lastModified
}

/** The progress entry of a download as it stands (PartialSaver writes it; a restart resumes from it). */
export function progressEntry (d: { url: string, plan: PiecePlan, bitmap: PieceBitmap, meta: BlobMeta, expected: BlobIdentity['expected'], startedAt: number }): PartialEntry {
  return {
    url: d.url,
    size: d.plan.size,
    pieceSize: d.plan.pieceSize,
    bitmap: d.bitmap.toBase64(),
    contentType: d.meta.contentType,
    headers: d.meta.headers,
    validator: d.meta.validator,
    etag: d.meta.etag,
    expectedDigest: d.expected === null ? null : digestLabel(d.expected),
    startedAt: d.startedAt,
    updatedAt: Date.now()
  }
}
