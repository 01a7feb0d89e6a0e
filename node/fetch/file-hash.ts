import type { Hash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'

const READ = 1 << 20

/**
 * Feeds bytes [start, end) of `fh` to `hash`, a MiB at a time (into `buf` when given, reused across
 * calls). Returns the bytes fed: fewer when the file ends first.
 */
export async function hashFileRange (fh: FileHandle, start: number, end: number, hash: Hash, buf = Buffer.allocUnsafe(Math.min(READ, Math.max(0, end - start)))): Promise<number> {
  let at = start
  while (at < end) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - at), at)
    if (bytesRead <= 0) break
    hash.update(buf.subarray(0, bytesRead))
    at += bytesRead
  }
  return at - start
}
