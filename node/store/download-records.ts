import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { FinalKey, IndexDb, PartialEntry } from './index-db.ts'
import type { StoreLayout } from './layout.ts'
import { PartialSpace } from './partial-space.ts'
import { WriteOrder } from './write-order.ts'

export interface DownloadRecordsInit {
  /** Progress entries untouched this long are dropped (at start, and by sweepStale while running). */
  partialTtlMs: number
  /** When the machine last booted (ms since the epoch). */
  bootTime: number
}

/**
 * What downloads leave in the index besides blobs: progress entries with their temp files (for resume),
 * and where URLs keyed by their final URL last led. Writes to one key land in the order issued.
 */
export class DownloadRecords {
  private readonly index: IndexDb
  private readonly layout: StoreLayout
  private readonly init: DownloadRecordsInit
  private readonly partialWrites = new WriteOrder()
  private readonly finalWrites = new WriteOrder()
  /** The space the progress entries' temp files take (kept in step with every write of them). */
  readonly space = new PartialSpace()

  constructor (index: IndexDb, layout: StoreLayout, init: DownloadRecordsInit) {
    this.index = index
    this.layout = layout
    this.init = init
  }

  /**
   * The key's progress entry, once the writes to it already issued have landed: a download that failed
   * deletes its entry and temp file after it settled, and a new download of the same key must neither
   * resume from that entry nor write to the file the discard is about to delete.
   */
  async getPartial (key: string): Promise<PartialEntry | undefined> {
    await this.partialWrites.settled(key)
    return await this.index.getPartial(key)
  }

  putPartial (key: string, entry: PartialEntry): Promise<void> {
    return this.partialWrites.run(key, async () => {
      await this.index.putPartial(key, entry)
      this.space.saved(key, entry)
    })
  }

  async discardPartial (key: string): Promise<void> {
    await this.partialWrites.run(key, async () => {
      this.space.gone(key)
      await this.index.delPartial(key)
      await rm(this.layout.tempPath(key), { force: true })
    })
  }

  /** Runs `commit` (a batch that deletes the key's progress entry) after the saves of it under way. */
  committing<T> (key: string, commit: () => Promise<T>): Promise<T> {
    return this.partialWrites.run(key, async () => {
      const out = await commit()
      this.space.gone(key)
      return out
    })
  }

  /** Where the URL keyed `key` led last (see Fetcher's keyByFinalUrl), kept across restarts. */
  async getFinal (key: string): Promise<FinalKey | undefined> {
    return await this.index.getFinal(key)
  }

  async putFinal (key: string, final: FinalKey): Promise<void> {
    await this.finalWrites.run(key, () => this.index.putFinal(key, final))
  }

  /** Runs `write` after the writes to the key's final entry under way. */
  afterFinalWrites<T> (key: string, write: () => Promise<T>): Promise<T> {
    return this.finalWrites.run(key, write)
  }

  /** Removes temp files without a partial entry and partial entries that are too old or lost their file. */
  async sweep (): Promise<void> {
    const keep = new Set<string>()
    const now = Date.now()
    for await (const [key, p] of this.index.partials()) {
      const path = this.layout.tempPath(key)
      const fresh = now - p.updatedAt < this.init.partialTtlMs
      const present = await stat(path).then(s => s.size === p.size, () => false)
      // Written before the machine last booted and not synced: bytes the entry counts may have been lost
      // from the page cache (a power loss). Nothing would catch that in a file known only by its URL; a
      // digest would.
      const trusted = p.expectedDigest !== null || p.updatedAt >= this.init.bootTime || p.synced === true
      if (fresh && present && trusted) {
        keep.add(path)
        this.space.saved(key, p)
      } else await this.discardPartial(key)
    }
    for (const name of await readdir(this.layout.tmpDir)) {
      const path = join(this.layout.tmpDir, name)
      if (this.layout.isTempName(name) && !keep.has(path)) await rm(path, { force: true })
    }
  }

  /**
   * While the node runs: drops progress entries and temp files untouched for the TTL (downloads that
   * failed and were not asked for again), which would otherwise stay until the next start. A download
   * under way writes its file all along: its file's time keeps it. How many went.
   */
  async sweepStale (): Promise<number> {
    const now = Date.now()
    const ttl = this.init.partialTtlMs
    const old = async (path: string): Promise<boolean> => await stat(path).then(s => now - s.mtimeMs >= ttl, () => true)
    const known = new Set<string>()
    let dropped = 0
    for await (const [key, p] of this.index.partials()) {
      const path = this.layout.tempPath(key)
      known.add(path)
      if (this.space.held(key) || now - p.updatedAt < ttl || !await old(path)) continue
      await this.discardPartial(key)
      dropped++
    }
    for (const name of await readdir(this.layout.tmpDir)) {
      const path = join(this.layout.tmpDir, name)
      if (!this.layout.isTempName(name) || known.has(path) || !await old(path)) continue
      await rm(path, { force: true })
      dropped++
    }
    return dropped
  }
}
