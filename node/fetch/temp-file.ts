import { mkdir, open } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { FileHandle } from 'node:fs/promises'
import type { PartialEntry, Validator } from '../store/index-db.ts'
import { PieceBitmap } from '../store/partial.ts'
import { isCacheDiskFailure } from '../errors.ts'
import { DiskPieces } from './disk-pieces.ts'
import { planPieces } from './pieces.ts'
import { firstRange } from './response-meta.ts'
import { isWeakEtag, unversioned } from './version.ts'

/**
 * Opens a download's temp file: the one an earlier run left when `resume` is its (matching) progress
 * entry, its finished pieces marked in `disk`; otherwise, or when that file is gone, a fresh file of the
 * final size.
 */
export async function openTempFile (path: string, resume: PartialEntry | undefined, size: number | null, disk: DiskPieces, pieces: { chunkSize: number, concurrency: number, maxAutoPiece?: number }): Promise<{ fh: FileHandle, resumed: boolean }> {
  if (resume !== undefined) {
    const fh = await open(path, 'r+').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null
      throw err
    })
    if (fh !== null) {
      const plan = { size: resume.size, pieceSize: resume.pieceSize, count: Math.ceil(resume.size / resume.pieceSize) }
      disk.start(plan, PieceBitmap.fromBase64(plan.count, resume.bitmap), resume.spans)
      return { fh, resumed: true }
    }
  }
  const fh = await open(path, 'w+').catch(async (err: NodeJS.ErrnoException) => {
    // Its directory was removed while the node runs (a cleanup of the cache dir): made again.
    if (err.code !== 'ENOENT') throw err
    await mkdir(dirname(path), { recursive: true })
    return await open(path, 'w+')
  })
  if (size !== null) await fh.truncate(size)
  disk.start(size === null ? null : planPieces(size, pieces.chunkSize, pieces.concurrency, pieces.maxAutoPiece))
  return { fh, resumed: false }
}

/**
 * The first bytes a progress entry has not got, [start, end): where a resumed download asks first
 * (a piece's remainder ends at the bytes an earlier run already wrote after it).
 */
export function firstGap (partial: PartialEntry): [number, number] {
  const count = Math.ceil(partial.size / partial.pieceSize)
  const disk = new DiskPieces()
  disk.start({ size: partial.size, pieceSize: partial.pieceSize, count }, PieceBitmap.fromBase64(count, partial.bitmap), partial.spans)
  const gap = disk.written.gaps(0, partial.size)[0]
  return gap ?? [0, partial.size]
}

/**
 * The range a download asks for first (inclusive end): from the client's first byte, or, resuming, the
 * first bytes the earlier run's entry has not got, at most up to the next bytes it has.
 */
export function firstAsk (partial: PartialEntry | undefined, chunkSize: number, hint: number): { start: number, end: number } {
  if (partial === undefined) return { start: hint, end: hint + firstRange(chunkSize) - 1 }
  const [start, end] = firstGap(partial)
  const len = Math.min(firstRange(chunkSize, partial.pieceSize), end > start ? end - start : Number.POSITIVE_INFINITY)
  return { start, end: start + len - 1 }
}

/** Whether an earlier run's progress entry belongs to the same file as the upstream serves now. */
export function resumes (partial: PartialEntry, size: number | null, validator: Validator): boolean {
  if (partial.size !== size) return false
  // Nothing tells two versions apart (no strong ETag, no Last-Modified): only a digest could, at the end.
  if (unversioned(partial.validator) && partial.expectedDigest === null) return false
  if (partial.validator.etag !== null && validator.etag !== null) {
    if (partial.validator.etag !== validator.etag) return false
    if (!isWeakEtag(validator.etag)) return true
  }
  return partial.validator.lastModified === validator.lastModified
}

/** Whether a download that failed this way keeps its progress entry and temp file for a later resume. */
export function keepsPartial (error: Error | null): boolean {
  // Wrong content is worthless; after a full disk its space is what others need now (and a disk that
  // refuses writes may have lost some).
  if (error?.name === 'DigestMismatchError') return false
  return !isCacheDiskFailure(error)
}
