import type { Logger } from '../log.ts'
import type { DownloadRecords } from './download-records.ts'
import type { IndexDb } from './index-db.ts'
import type { WriteOrder } from './write-order.ts'

export interface IndexTidyComponents {
  index: IndexDb
  records: DownloadRecords
  /** Whether the store holds this blob now. */
  holds: (digest: string) => boolean
  /** The store's per-blob write order (commits and drops run in it). */
  blobWrites: WriteOrder
  logger: Logger
}

/**
 * What the running store tidies now and then besides its budget: partial downloads left untouched for
 * cache.chunk_ttl_hours (see DownloadRecords.sweepStale), and the index entries of blobs no longer held.
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
      const keys = await this.pruneKeys()
      if (keys > 0) this.c.logger.debug({ dropped: keys }, 'index entries of evicted blobs removed')
    })().catch((err: unknown) => {
      this.c.logger.warn({ err }, 'partial download sweep failed')
    }).finally(() => { this.running = null })
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
      if (this.c.holds(entry.digest)) continue
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
