/**
 * Read-only views the HTTP front shows on /health and /stats. The fetch engine and the blob store
 * supply real ones; until then /health lists no downloads and /stats walks the cache directory.
 */

/** Active downloads. Entries are JSON-serialisable; the seed listed cache keys (strings). */
export interface DownloadsProvider {
  list: () => readonly unknown[]
}

/** The `cache` object of /stats. Seed keys first; providers may add more. */
export interface CacheStats {
  total_size_mb: number
  file_count: number
  [key: string]: unknown
}

export type CacheStatsProvider = () => CacheStats | Promise<CacheStats>
