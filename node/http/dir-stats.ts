import { opendir, lstat } from 'node:fs/promises'
import { join } from 'node:path'
import type { CacheStats } from './providers.ts'

/**
 * Counts regular files and their bytes under `dir` (recursively, symlinks not followed). A missing
 * directory is an empty cache. Stands in for the blob store's own statistics.
 */
export async function dirStats (dir: string, options: { signal?: AbortSignal } = {}): Promise<CacheStats> {
  let files = 0
  let bytes = 0
  const stack = [dir]
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    const current = stack.pop() as string
    let handle
    try {
      handle = await opendir(current)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES') continue
      throw err
    }
    for await (const entry of handle) {
      const path = join(current, entry.name)
      if (entry.isDirectory()) stack.push(path)
      else if (entry.isFile()) {
        try {
          bytes += (await lstat(path)).size
          files++
        } catch {
          // Removed while walking: not part of the cache any more.
        }
      }
    }
  }
  return {
    total_size_mb: Math.round(bytes / 1024 / 1024 * 100) / 100,
    file_count: files,
    total_size_bytes: bytes,
    dir
  }
}
