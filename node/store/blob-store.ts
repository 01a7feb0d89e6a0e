import { mkdir, open, rename, rm, stat, statfs, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { uptime } from 'node:os'
import { dirname } from 'node:path'
import type { Logger } from '../log.ts'
import { BlobCheck } from './blob-check.ts'
import { ensureDir } from './ensure-dir.ts'
import { BlobScrub } from './scrub.ts'
import type { EvictionEntry } from './eviction.ts'
import { CacheSpace } from './cache-space.ts'
import { IndexDb } from './index-db.ts'
import type { BlobEntry, FinalKey, KeyEntry, PartialEntry } from './index-db.ts'
import { createLayout } from './layout.ts'
import type { StoreLayout } from './layout.ts'
import { WriteOrder } from './write-order.ts'
import { Traffic } from './traffic.ts'
import type { TrafficCounts } from './traffic.ts'
import { DownloadRecords } from './download-records.ts'
import { IndexTidy } from './index-tidy.ts'
import { openIndex } from './open-index.ts'
import { PartialSpace } from './partial-space.ts'


export interface BlobStoreComponents {
  logger: Logger
}

export interface BlobStoreInit {
  dir: string
  maxBytes: number
  minFreeBytes?: number
  highWatermark?: number
  lowWatermark?: number
  lruEnabled?: boolean
  /** Partial downloads untouched for longer are discarded at start. */
  partialTtlMs?: number
  /** When the machine booted (ms since the epoch; default from the OS uptime). */
  bootTime?: number
  /** Free-space probe; injectable so tests can simulate a full disk. */
  freeBytes?: (dir: string) => Promise<number>
  /**
   * How often the cache is brought back under its budget and free-disk floor when no download asks for
   * room (a lowered `max_size_gb`, other programs filling the disk); also once at start. Default 60 s.
   */
  sweepEveryMs?: number
  /** How often stale partial downloads are looked for while running. Default a quarter of partialTtlMs, at most an hour. */
  partialSweepEveryMs?: number
  /** Every blob is hashed again in the background once its last check is this old (0: never; see BlobScrub). */
  verifyEveryMs?: number
  /** BlobScrub's read rate and how often it looks for blobs due (tests). */
  verifyBytesPerSecond?: number
  verifyLookEveryMs?: number
}

export interface StoredBlob {
  readonly key: string
  readonly entry: KeyEntry
  readonly path: string
}

export interface StoreStats extends TrafficCounts {
  total_size_bytes: number
  file_count: number
}

async function defaultFreeBytes (dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/**
 * Content-addressed blob files plus the LevelDB index. Writers hand it finished temp files
 * (commit = fsync → rename → index batch); readers take a use count so eviction never removes a
 * blob being read.
 */
export class BlobStore {
  readonly layout: StoreLayout
  readonly index: IndexDb
  private readonly log: Logger
  private readonly space: CacheSpace
  private readonly lruEnabled: boolean
  private readonly freeBytesOf: (dir: string) => Promise<number>
  private readonly blobs = new Map<string, BlobEntry>()
  private readonly inUse = new Map<string, number>()
  private usedBytes = 0
  private started = false
  /** The periodic eviction sweep (see start) and the pass under way, if any. */
  private sweeper: NodeJS.Timeout | null = null
  private readonly tidy: IndexTidy
  private sweeping: Promise<void> | null = null
  private readonly sweepEveryMs: number
  /** Hits, misses and bytes moved, for `/stats`. */
  readonly traffic = new Traffic()
  private readonly committedListeners = new Set<(digest: string, size: number) => void>()
  private readonly records: DownloadRecords
  /** Writes to a blob's entry (access times, drops), in the order issued. */
  private readonly blobWrites = new WriteOrder()
  private readonly check: BlobCheck
  readonly scrub: BlobScrub | null

  constructor (components: BlobStoreComponents, init: BlobStoreInit) {
    this.log = components.logger.child({ component: 'store' })
    this.layout = createLayout(init.dir)
    this.index = new IndexDb(this.layout.indexDir, { freeBytes: async () => await this.freeBytes(), logger: this.log })
    this.lruEnabled = init.lruEnabled ?? true
    this.records = new DownloadRecords(this.index, this.layout, {
      partialTtlMs: init.partialTtlMs ?? 24 * 3600_000,
      bootTime: init.bootTime ?? Date.now() - uptime() * 1000
    })
    this.tidy = new IndexTidy({
      index: this.index,
      records: this.records,
      blobWrites: this.blobWrites,
      blobs: this.blobs,
      blobPath: digest => this.layout.blobPath(digest),
      drop: async (digest, reason) => { await this.drop(digest, reason) },
      logger: this.log
    }, {
      everyMs: init.partialSweepEveryMs ?? Math.max(1000, Math.min((init.partialTtlMs ?? 24 * 3600_000) / 4, 3600_000))
    })
    this.freeBytesOf = init.freeBytes ?? defaultFreeBytes
    this.space = new CacheSpace({
      logger: this.log,
      freeBytes: async () => await this.freeBytes(),
      usedBytes: () => this.usedBytes,
      idlePartialBytes: () => this.records.space.idleBytes(),
      entries: () => this.evictionEntries(),
      evictOne: async (id) => await this.evictOne(id)
    }, {
      budget: { maxBytes: init.maxBytes, minFreeBytes: init.minFreeBytes ?? 0, highWatermark: init.highWatermark ?? 0.95, lowWatermark: init.lowWatermark ?? 0.85 },
      lruEnabled: this.lruEnabled
    })
    this.sweepEveryMs = init.sweepEveryMs ?? 60_000
    this.check = new BlobCheck({
      path: digest => this.layout.blobPath(digest),
      save: async (digest, entry) => { await this.blobWrites.run(digest, () => this.index.putBlob(digest, entry)) },
      drop: async (digest, reason) => { await this.drop(digest, reason) }
    })
    this.scrub = (init.verifyEveryMs ?? 0) > 0
      ? new BlobScrub({
        blobs: () => [...this.blobs],
        entry: digest => this.blobs.get(digest),
        busy: () => this.space.busy,
        verify: async (digest, entry, options) => await this.check.verify(digest, entry, options)
      }, this.log, { everyMs: init.verifyEveryMs ?? 0, bytesPerSecond: init.verifyBytesPerSecond, lookEveryMs: init.verifyLookEveryMs })
      : null
  }

  get maxBytes (): number {
    return this.space.budget.maxBytes
  }

  async start (): Promise<void> {
    if (this.started) return
    await ensureDir(this.layout.dir)
    await mkdir(this.layout.blobsDir, { recursive: true })
    await mkdir(this.layout.tmpDir, { recursive: true })
    await mkdir(this.layout.indexDir, { recursive: true })
    for (const [digest, entry] of await openIndex(this.index, this.layout, this.records, this.log)) {
      this.blobs.set(digest, entry)
      this.usedBytes += entry.size
    }
    this.started = true
    this.scrub?.start()
    this.tidy.start()
    if (this.lruEnabled) {
      this.sweep()
      this.sweeper = setInterval(() => { this.sweep() }, this.sweepEveryMs)
      this.sweeper.unref()
    }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    if (this.sweeper !== null) clearInterval(this.sweeper)
    this.sweeper = null
    await this.scrub?.stop()
    await this.sweeping
    await this.tidy.stop()
    // Entry writes not awaited by their callers (access times, an adopted blob found public) land first.
    await this.blobWrites.idle()
    await this.index.close()
    this.blobs.clear()
    this.usedBytes = 0
  }

  /** Resolves a cache key to a committed blob, checking that the file is still there and intact. */
  async lookup (key: string): Promise<StoredBlob | undefined> {
    const entry = await this.index.getKey(key)
    if (entry === undefined) return undefined
    if (!(await this.checkBlob(entry.digest))) {
      await this.index.delKey(key)
      return undefined
    }
    return { key, entry, path: this.layout.blobPath(entry.digest) }
  }

  /** The upstream gives the file of `key` to requests without credentials: its entry is anyone's. */
  async shareKey (key: string): Promise<void> {
    const entry = await this.index.getKey(key)
    if (entry === undefined || entry.shareable !== false) return
    const { credential: _credential, ...rest } = entry
    await this.index.putKey(key, { ...rest, shareable: true })
  }

  /** The upstream confirmed that the file behind `key` did not change: its entry's `fetchedAt` becomes now. */
  async confirmKey (key: string): Promise<void> {
    const entry = await this.index.getKey(key)
    if (entry !== undefined) await this.index.putKey(key, { ...entry, fetchedAt: Date.now() })
  }

  /**
   * A committed blob by digest (content identity), whatever key stored it. `forPeer`: asked for a
   * cluster member, which checks every MiB against the piece list itself (made from the verified bytes,
   * or by reading the blob back through its digest): a change time alone does not cost a re-hash then.
   */
  async hasDigest (digest: string, o: { forPeer?: boolean } = {}): Promise<boolean> {
    // A member gets only what any client may have (see BlobEntry.private, BlobEntry.adopted).
    if (o.forPeer === true && !this.isPublic(digest)) return false
    return this.blobs.has(digest) && await this.checkBlob(digest, o.forPeer !== true)
  }

  /** Neither fetched with a client's credentials nor of unknown origin, or known public since. */
  isPublic (digest: string): boolean {
    return isPublicEntry(this.blobs.get(digest))
  }

  /** The upstream gave the blob to a client without credentials: any client, and any member, may have it. */
  knownPublic (digest: string): void {
    const entry = this.blobs.get(digest)
    if (entry === undefined || isPublicEntry(entry)) return
    delete entry.adopted
    delete entry.private
    this.blobWrites.run(digest, () => this.index.putBlob(digest, entry)).catch(() => {})
  }

  blobSize (digest: string): number | undefined {
    return this.blobs.get(digest)?.size
  }

  /** Marks a blob in use; the returned function releases it. Touches its access time. */
  use (digest: string): () => void {
    this.inUse.set(digest, (this.inUse.get(digest) ?? 0) + 1)
    const entry = this.blobs.get(digest)
    if (entry !== undefined) entry.lastAccess = Date.now()
    let released = false
    return () => {
      if (released) return
      released = true
      const n = (this.inUse.get(digest) ?? 1) - 1
      if (n <= 0) this.inUse.delete(digest)
      else this.inUse.set(digest, n)
      if (entry !== undefined && this.blobs.get(digest) === entry) {
        this.blobWrites.run(digest, () => this.index.putBlob(digest, entry)).catch(() => {})
      }
    }
  }

  /**
   * Reserves space for a download of `bytes` (see CacheSpace.reserve); false: pass the file through.
   * `written` says how much of it the download has written so far.
   */
  async reserve (bytes: number, written?: () => number): Promise<boolean> {
    return await this.space.reserve(bytes, written)
  }

  /** Ends a reservation (`written`: the one given to reserve). */
  unreserve (bytes: number, written?: () => number): void {
    this.space.unreserve(bytes, written)
  }

  /**
   * A download of `key` runs: its partial download (temp file and progress entry) is not evicted nor
   * swept until the returned function is called.
   */
  holdPartial (key: string): () => void {
    return this.records.space.hold(key)
  }

  /**
   * Evicts a blob, or a partial download (see PartialSpace), unless it came into use since the plan was
   * made (a cache hit between the plan and this turn: its reader would find the file gone); false then.
   */
  private async evictOne (id: string): Promise<boolean> {
    const key = PartialSpace.keyOf(id)
    if (key === null) {
      if (this.inUse.has(id)) return false
      // drop() takes the blob out of the map before its first await: a hit after this finds it gone.
      await this.drop(id, 'evicted')
      return true
    }
    if (this.records.space.held(key)) return false
    await this.records.discardPartial(key)
    this.log.info({ key }, 'partial download evicted')
    return true
  }

  /** Makes a finished, verified temp file a blob. The handle stays open (readers may still use it). */
  async commit (key: string, temp: { path: string, fh: FileHandle }, entry: KeyEntry): Promise<string> {
    await temp.fh.sync()
    const path = this.layout.blobPath(entry.digest)
    await mkdir(dirname(path), { recursive: true })
    const existing = this.blobs.get(entry.digest)
    if (existing !== undefined && await this.checkBlob(entry.digest)) {
      await unlink(temp.path).catch(() => {})
    } else {
      await rename(temp.path, path)
      await syncDir(dirname(path))
    }
    const st = await stat(path)
    const blob: BlobEntry = { size: entry.size, lastAccess: Date.now(), pins: existing?.pins ?? 0, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs, verifiedAt: Date.now() }
    // Fetched with credentials, it stays private unless it was known public already.
    if (entry.shareable === false && !isPublicEntry(existing)) blob.private = true
    // The batch deletes the key's progress entry: after any save of it still under way.
    try {
      await this.blobWrites.run(entry.digest, () => this.records.committing(key, () => this.index.commit(key, entry, blob)))
    } catch (err) {
      // Not in the index, so not counted: the file would fill the disk unaccounted for.
      if (existing === undefined) await rm(path, { force: true })
      throw err
    }
    if (!this.blobs.has(entry.digest)) this.usedBytes += entry.size
    this.blobs.set(entry.digest, blob)
    for (const listener of this.committedListeners) listener(entry.digest, entry.size)
    return path
  }

  /** Calls `listener` after each commit; returns the function that stops it. */
  onCommitted (listener: (digest: string, size: number) => void): () => void {
    this.committedListeners.add(listener)
    return () => { this.committedListeners.delete(listener) }
  }

  /** Progress entries (see DownloadRecords). */
  getPartial (key: string): Promise<PartialEntry | undefined> { return this.records.getPartial(key) }
  putPartial (key: string, entry: PartialEntry): Promise<void> { return this.records.putPartial(key, entry) }
  discardPartial (key: string): Promise<void> { return this.records.discardPartial(key) }
  /** Where a URL keyed by its final URL last led (see DownloadRecords). */
  getFinal (key: string): Promise<FinalKey | undefined> { return this.records.getFinal(key) }
  putFinal (key: string, final: FinalKey): Promise<void> { return this.records.putFinal(key, final) }

  /** Deletes a blob file and its index entry (key entries pointing at it are dropped lazily). */
  async drop (digest: string, reason: string): Promise<void> {
    const entry = this.blobs.get(digest)
    if (entry !== undefined) {
      this.blobs.delete(digest)
      this.usedBytes -= entry.size
    }
    // The file first: an index that cannot write now (a full disk) must not keep its space taken. An
    // entry left without its file is dropped when next looked at.
    await rm(this.layout.blobPath(digest), { force: true }).catch((err: unknown) => {
      // A directory the node may not write (permissions): the file stays, unaccounted for until a start
      // takes it back; the request that found it goes on without it.
      this.log.warn({ err, digest }, 'could not remove a dropped blob\'s file')
    })
    await this.blobWrites.run(digest, () => this.index.delBlob(digest)).catch((err: unknown) => {
      this.log.warn({ err, digest }, 'could not remove a dropped blob\'s index entry')
    })
    this.log.info({ digest, reason }, 'blob dropped')
  }

  /** One eviction pass, unless one is under way or the store stopped. */
  private sweep (): void {
    if (this.sweeping !== null || !this.started) return
    this.sweeping = this.evict().then(n => {
      if (n > 0) this.log.info({ evicted: n, used: this.usedBytes }, 'cache brought back under its budget')
    }, (err: unknown) => {
      this.log.warn({ err }, 'cache eviction sweep failed')
    }).finally(() => { this.sweeping = null })
  }

  /** Brings the cache back under its high watermark and free-disk floor; how many blobs went. */
  async evict (): Promise<number> {
    return await this.space.evict()
  }

  private async freeBytes (): Promise<number> {
    try {
      return await this.freeBytesOf(this.layout.dir)
    } catch {
      return Number.POSITIVE_INFINITY
    }
  }

  stats (): StoreStats {
    return {
      total_size_bytes: this.usedBytes,
      file_count: this.blobs.size,
      ...this.traffic.counts()
    }
  }

  /** True when the blob file is present and still the blob (see BlobCheck; `strict`: its change time counts). */
  private async checkBlob (digest: string, strict = true): Promise<boolean> {
    const entry = this.blobs.get(digest)
    return entry !== undefined && await this.check.check(digest, entry, strict)
  }

  private evictionEntries (): EvictionEntry[] {
    const out = this.records.space.evictionEntries()
    for (const [digest, e] of this.blobs) {
      out.push({ digest, size: e.size, lastAccess: e.lastAccess, inUse: this.inUse.has(digest), pinned: e.pins > 0 })
    }
    return out
  }
}

async function syncDir (dir: string): Promise<void> {
  let fh: FileHandle | undefined
  try {
    fh = await open(dir, 'r')
    await fh.sync()
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  } finally {
    await fh?.close()
  }
}

/** Neither fetched with a client's credentials nor of unknown origin, or known public since. */
function isPublicEntry (entry: BlobEntry | undefined): boolean {
  return entry !== undefined && entry.adopted !== true && entry.private !== true
}
