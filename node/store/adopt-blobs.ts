import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { BlobEntry } from './index-db.ts'

const HEX64 = /^[0-9a-f]{64}$/
const SHARD = /^[0-9a-f]{2}$/

/**
 * The blob files under `blobsDir` (`<ab>/<hex>`), as entries for an index that lost them (damaged, or
 * of another format version): the cache keeps its bytes instead of fetching them all again. An entry
 * carries no file identity, so its bytes are hashed before their first use, and `adopted`, since
 * whether it was fetched with a client's credentials went with the index. Anything else in the tree
 * (a file misnamed, or in the wrong shard) is removed: it would fill the disk unaccounted for.
 */
export async function * adoptBlobFiles (blobsDir: string): AsyncGenerator<[string, BlobEntry]> {
  for (const shard of await readdir(blobsDir, { withFileTypes: true })) {
    const shardDir = join(blobsDir, shard.name)
    if (!shard.isDirectory() || !SHARD.test(shard.name)) {
      await rm(shardDir, { recursive: true, force: true })
      continue
    }
    for (const file of await readdir(shardDir, { withFileTypes: true })) {
      const path = join(shardDir, file.name)
      if (!file.isFile() || !HEX64.test(file.name) || !file.name.startsWith(shard.name)) {
        await rm(path, { recursive: true, force: true })
        continue
      }
      const st = await stat(path).catch(() => null)
      if (st === null) continue
      // Access times may not be kept (noatime): the later of the two orders the LRU well enough.
      yield [file.name, { size: st.size, lastAccess: Math.max(st.atimeMs, st.mtimeMs), pins: 0, mtimeMs: -1, ino: -1, adopted: true }]
    }
  }
}
