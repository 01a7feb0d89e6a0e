import { open } from 'node:fs/promises'
import { Readable } from 'node:stream'
import type { BlobStore } from '../store/blob-store.ts'
import { FILE_CHUNK, FileCursor, pooledChunks } from './blob-chunks.ts'
import type { BufferPool } from './buffer-pool.ts'
import { CursorReader } from './cursor-reader.ts'
import type { BlobHandle } from './fetcher.ts'
import type { GcPacer } from './gc-pacer.ts'
import type { BlobIdentity } from './identity.ts'
import type { BlobMeta } from './response-meta.ts'

/**
 * The committed blob for `identity`, as a handle serving it from disk: by its key entry (the
 * upstream's headers replayed), or by its digest alone (a blob another key or another registry brought
 * in). Null on a miss. Keeps the blob in use until released; the caller counts the hit once it serves it
 * (a copy found changed upstream is a miss).
 */
export async function cacheHit (store: BlobStore, buffers: { pacer: GcPacer, pool: BufferPool }, identity: BlobIdentity): Promise<BlobHandle | null> {
  const stored = await store.lookup(identity.key)
  let meta: BlobMeta
  let digest: string
  let confirmedAt: number | undefined
  let fetchedFor: string | undefined
  let onPublic: (() => void) | undefined
  if (stored !== undefined) {
    const e = stored.entry
    digest = e.digest
    confirmedAt = e.fetchedAt
    if (e.shareable === false) fetchedFor = e.credential ?? 'unknown'
    if (!store.isPublic(digest)) onPublic = () => { store.knownPublic(digest) }
    meta = { size: e.size, etag: e.etag, lastModified: e.validator.lastModified, contentType: e.contentType, headers: e.headers, validator: e.validator }
  } else if (identity.sha256 !== null && await store.hasDigest(identity.sha256)) {
    digest = identity.sha256
    const size = store.blobSize(digest) ?? 0
    meta = { size, etag: `"${digest}"`, lastModified: null, contentType: null, headers: {}, validator: { etag: null, lastModified: null } }
    // Fetched with someone's credentials (or taken back into a rebuilt index: it may have been).
    if (!store.isPublic(digest)) {
      fetchedFor = 'unknown'
      onPublic = () => { store.knownPublic(digest) }
    }
  } else {
    return null
  }
  const path = store.layout.blobPath(digest)
  // In use before anything is awaited again, so eviction leaves it alone from here; one evicted since the
  // lookup is a miss.
  const release = store.use(digest)
  if (store.blobSize(digest) === undefined) {
    release()
    return null
  }
  // A file present but unreadable (permissions, a failing disk) would fail every request for it: the
  // blob goes, and the file is fetched again.
  const unreadable = await open(path, 'r').then(async fh => { await fh.close() }, (err: unknown) => err)
  if (unreadable !== undefined) {
    release()
    await store.drop(digest, `unreadable: ${(unreadable as { code?: string }).code ?? String(unreadable)}`).catch(() => {})
    return null
  }
  // Each stream keeps the blob in use until it closes, and counts what it read.
  const cursor = (start: number, end: number): FileCursor => {
    const unuse = store.use(digest)
    return new FileCursor(path, start, end, {
      onClose: (n) => {
        store.traffic.servedFromCache(n)
        unuse()
      }
    })
  }
  return {
    kind: 'blob',
    from: 'cache',
    meta,
    confirmedAt,
    fetchedFor,
    onPublic,
    open: (start, end) => end <= start ? Readable.from([]) : new CursorReader(cursor(start, end), buffers.pacer, FILE_CHUNK),
    chunks: (start, end) => pooledChunks(cursor(start, end), buffers.pool, FILE_CHUNK),
    release
  }
}
