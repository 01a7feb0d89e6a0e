import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { StartError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { adoptBlobFiles } from './adopt-blobs.ts'
import type { DownloadRecords } from './download-records.ts'
import type { BlobEntry, IndexDb } from './index-db.ts'
import { diskRefusal, isLocked } from './level-errors.ts'
import type { StoreLayout } from './layout.ts'

/**
 * Opens the index and returns its blob entries, whatever state it was left in: a damaged one (a disk
 * that lost its files, a crash mid-compaction) costs its entries, not the node, and one made anew
 * (damaged, deleted, of another format version) takes back the blob files on disk, since fetching them
 * all again would cost more than hashing them. Partial downloads it no longer knows are swept.
 */
export async function openIndex (index: IndexDb, layout: StoreLayout, records: DownloadRecords, log: Logger): Promise<Map<string, BlobEntry>> {
  let loaded: { blobs: Map<string, BlobEntry>, created: boolean }
  try {
    loaded = await load(index, log)
    await records.sweep()
  } catch (err) {
    // Another process holding the index is not damage.
    if (isLocked(err)) throw new StartError(`the cache directory ${dirname(layout.indexDir)} (cache.dir) is in use by another aimirror node: its index is locked`, { cause: err })
    // Nor is a disk that refuses writes: LevelDB cannot open an index without writing to it.
    const refused = diskRefusal(err)
    if (refused !== null) throw new StartError(`the cache directory ${dirname(layout.indexDir)} (cache.dir) cannot be written (${refused}): free some space there or fix its permissions; its index is left as it is`, { cause: err })
    log.warn({ err }, 'cache index could not be read; it was made anew')
    await index.destroy()
    await mkdir(layout.indexDir, { recursive: true })
    loaded = { blobs: (await load(index, log)).blobs, created: true }
  }
  if (loaded.created) {
    await adopt(index, layout, loaded.blobs, log, 'blob files taken back into the new index; each is hashed before its first use')
    await records.sweep()
    await index.markComplete()
  } else {
    // Files a commit renamed in but whose index write never landed (a crash between the two, a disk
    // that refused the write): counted again instead of filling the disk unaccounted for.
    await adopt(index, layout, loaded.blobs, log, 'blob files the index did not know were taken back; each is hashed before its first use')
  }
  return loaded.blobs
}

async function load (index: IndexDb, log: Logger): Promise<{ blobs: Map<string, BlobEntry>, created: boolean }> {
  const { reset, created } = await index.open()
  if (reset) log.warn('cache index had another format version; it was made anew')
  const blobs = new Map<string, BlobEntry>()
  for await (const [digest, entry] of index.blobs()) blobs.set(digest, entry)
  return { blobs, created }
}

async function adopt (index: IndexDb, layout: StoreLayout, blobs: Map<string, BlobEntry>, log: Logger, said: string): Promise<void> {
  let count = 0
  let bytes = 0
  for await (const [digest, entry] of adoptBlobFiles(layout.blobsDir)) {
    // Taken back by a start cut short before the index was complete.
    if (blobs.has(digest)) continue
    await index.putBlob(digest, entry)
    blobs.set(digest, entry)
    bytes += entry.size
    count++
  }
  if (count > 0) log.warn({ blobs: count, bytes }, said)
}
