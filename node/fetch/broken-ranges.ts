import type { LRUCache } from 'lru-cache'
import { lruCache } from '../lru.ts'

/** How long a file whose range answers contradicted themselves is asked for whole only. */
const DISTRUST_MS = 60 * 60_000

/**
 * URLs (as asked, before redirects) whose 206 answers were framed two ways at once (see
 * framingContradicts). They come whole in one GET for an hour: ranging them again would fail each
 * download at its first bad piece.
 */
export class BrokenRanges {
  private readonly urls: LRUCache<string, true> = lruCache(1000, { ttl: DISTRUST_MS })

  mark (url: URL): void {
    this.urls.set(url.href, true)
  }

  has (url: URL): boolean {
    return this.urls.has(url.href)
  }
}
