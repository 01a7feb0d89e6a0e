import { access } from 'node:fs/promises'
import type { Logger } from '../log.ts'
import type { DownloadRecords } from './download-records.ts'
import type { IndexDb } from './index-db.ts'
import type { WriteOrder } from './write-order.ts'

export interface IndexTidyComponents {
  index: IndexDb
  records: DownloadRecords
  /** The store's per-blob write order (commits and drops run in it). */
  blobWrites: WriteOrder
  /** The blobs the store holds now, by digest (an entry is replaced when the blob is committed again). */
  blobs: ReadonlyMap<string, unknown>
  blobPath: (digest: string) => string
  /** Drops a blob from the store (its file, its entry, its bytes in the budget). */
  drop: (digest: string, reason: string) => Promise<void>
  logger: Logger
}

/**
 * What the running store tidies now and then besides its budget: partial downloads left untouched for
 * cache.chunk_ttl_hours (see DownloadRecords.sweepStale), blobs whose files were deleted by hand, and
 * the index entries of blobs no longer held.
 */
export class IndexTidy {
  private readonly c: IndexTidyComponents
  private readonly everyMs: number
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private stopped = false

  constructor (components: IndexTidyComponents, init: { everyMs: number }) {
    this.c = components
    this.everyMs = init.everyMs
  }

  start (): void {
    this.stopped = false
    this.timer = setInterval(() => { this.pass() }, this.everyMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  private pass (): void {
    if (this.running !== null || this.stopped) return
    this.running = (async () => {
      const partials = await this.c.records.sweepStale()
      if (partials > 0) this.c.logger.info({ dropped: partials }, 'partial downloads untouched for cache.chunk_ttl_hours removed')
      const missing = await this.dropMissing()
      if (missing > 0) this.c.logger.info({ dropped: missing }, 'blobs whose files are gone from the cache directory dropped')
      const keys = await this.pruneKeys()
      if (keys > 0) this.c.logger.debug({ dropped: keys }, 'index entries of evicted blobs removed')
    })().catch((err: unknown) => {
      this.c.logger.warn({ err }, 'partial download sweep failed')
    }).finally(() => { this.running = null })
  }

  /**
   * Drops the blobs whose files are gone (deleted by hand to make room): they were counted in the budget
   * until a client asked for them, and evicted other blobs meanwhile. A blob committed again while its
   * file was looked at (a new entry) is left alone.
   */
  private async dropMissing (): Promise<number> {
    let dropped = 0
    for (const [digest, entry] of [...this.c.blobs]) {
      if (this.stopped) break
      const gone = await access(this.c.blobPath(digest)).then(() => false, (err: unknown) => (err as { code?: string }).code === 'ENOENT')
      if (!gone || this.c.blobs.get(digest) !== entry) continue
      await this.c.drop(digest, 'missing')
      dropped++
    }
    return dropped
  }

  /**
   * Removes key entries whose blob is gone (eviction drops the blob's entry only; a key's went when it was
   * next asked, so every URL ever cached kept one), then where-a-URL-led entries older than an hour whose
   * key has no entry left. Each key's check runs in its blob's write order: a commit of it meanwhile stays.
   */
  private async pruneKeys (): Promise<number> {
    const { index, records, blobWrites } = this.c
    let dropped = 0
    for await (const [key, entry] of index.keys()) {
      if (this.stopped) return dropped
      if (this.c.blobs.has(entry.digest)) continue
      await blobWrites.run(entry.digest, async () => {
        if (await index.getBlob(entry.digest) !== undefined) return
        const now = await index.getKey(key)
        if (now?.digest !== entry.digest) return
        await index.delKey(key)
        dropped++
      })
    }
    const hourAgo = Date.now() - 3600_000
    for await (const [key, final] of index.finals()) {
      if (this.stopped) return dropped
      if (final.at > hourAgo || await index.getKey(final.key) !== undefined) continue
      await records.afterFinalWrites(key, async () => {
        const now = await index.getFinal(key)
        if (now !== undefined && now.at <= hourAgo && await index.getKey(now.key) === undefined) {
          await index.delFinal(key)
          dropped++
        }
      })
    }
    return dropped
  }
}
