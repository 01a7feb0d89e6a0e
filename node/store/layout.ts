import { createHash } from 'node:crypto'
import { join } from 'node:path'

/**
 * On-disk layout of the cache directory. Bump STORE_FORMAT_VERSION when the layout or the index
 * key/value shapes change incompatibly; the store refuses (and rebuilds) an index of another version.
 *
 *   <dir>/blobs/sha256/<ab>/<hex>   committed blobs, sharded by the first two hex digits
 *   <dir>/tmp/<hash of key>.part    downloads in progress (stable name per key, so they resume)
 *   <dir>/index/                    LevelDB index
 */
export const STORE_FORMAT_VERSION = 1

export interface StoreLayout {
  readonly dir: string
  readonly blobsDir: string
  readonly tmpDir: string
  readonly indexDir: string
  blobPath: (digestHex: string) => string
  tempPath: (key: string) => string
  /** Whether a name in tmpDir is one of the store's temp files (anything else there is not ours to remove). */
  isTempName: (name: string) => boolean
}

const HEX64 = /^[0-9a-f]{64}$/
const TEMP_NAME = /^[0-9a-f]{40}\.part$/

export function createLayout (dir: string): StoreLayout {
  const blobsDir = join(dir, 'blobs', 'sha256')
  const tmpDir = join(dir, 'tmp')
  return {
    dir,
    blobsDir,
    tmpDir,
    indexDir: join(dir, 'index'),
    blobPath (digestHex: string): string {
      // The digest comes from our own hasher or a validated identity; refuse anything else so a
      // crafted value can never name a path outside the blob tree.
      if (!HEX64.test(digestHex)) throw new TypeError('invalid sha256 hex digest')
      return join(blobsDir, digestHex.slice(0, 2), digestHex)
    },
    tempPath (key: string): string {
      return join(tmpDir, createHash('sha256').update(key).digest('hex').slice(0, 40) + '.part')
    },
    isTempName (name: string): boolean {
      return TEMP_NAME.test(name)
    }
  }
}
