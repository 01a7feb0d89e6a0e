import { rm } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { Level } from 'level'
import type { Logger } from '../log.ts'
import { STORE_FORMAT_VERSION } from './layout.ts'
import { diskRefusal } from './level-errors.ts'

/** Free space a reopen waits for: LevelDB writes its memtable (up to 4 MiB) out as a table first. */
const REOPEN_ROOM = 8 << 20
const REOPEN_LOOK_EVERY_MS = 2000

export interface IndexDbInit {
  /** Free bytes on the index's disk (a reopen after a full disk waits for room). */
  freeBytes?: () => Promise<number>
  logger?: Logger
}

/**
 * The LevelDB index. Key layout (format version STORE_FORMAT_VERSION):
 *   meta!version   -> number
 *   key!<cache key> -> KeyEntry      what a cache key resolves to
 *   blob!<sha256>   -> BlobEntry     per committed blob
 *   part!<cache key> -> PartialEntry download in progress (piece bitmap, for resume)
 *   final!<cache key> -> FinalKey    where a URL keyed by its final URL last led (see Fetcher)
 */

export interface Validator {
  readonly etag: string | null
  readonly lastModified: string | null
}

export interface KeyEntry {
  readonly digest: string
  readonly size: number
  readonly contentType: string | null
  /** Upstream headers replayed to clients (lower-case names). */
  readonly headers: Record<string, string>
  readonly validator: Validator
  /** The ETag clients see; stable across cache and upstream. */
  readonly etag: string
  readonly fetchedAt: number
  /**
   * Fetched without a client's credentials, so a keyed cluster's members may be given it by its URL
   * key. Entries without it (fetched with credentials, or written before it existed) are not.
   */
  readonly shareable?: boolean
  /** Fetched with credentials: the hash naming them (see credentialOf), so that client needs no access check. */
  readonly credential?: string
}

export interface BlobEntry {
  readonly size: number
  lastAccess: number
  pins: number
  /** File identity at commit time; a change means the file was touched and must be re-verified. */
  mtimeMs: number
  ino: number
  /**
   * Its change time: any write moves it, also one whose mtime was put back afterwards (which only
   * moves it again). Absent in entries of earlier versions (taken at the next check).
   */
  ctimeMs?: number
  /**
   * Found on disk when the index was rebuilt (see adoptBlobFiles): who it was fetched for is unknown,
   * so a client gets it by its digest alone only once the upstream let that client have it, until an
   * anonymous client was let.
   */
  adopted?: boolean
  /**
   * Fetched with a client's credentials, and no client without them was let have it since: given to
   * cluster members only once it is known public (see BlobStore.knownPublic).
   */
  private?: boolean
  /** When its bytes were last hashed and matched (ms since the epoch); absent: at its commit (its mtime). */
  verifiedAt?: number
}

export interface PartialEntry {
  readonly url: string
  readonly size: number
  readonly pieceSize: number
  readonly bitmap: string
  /**
   * Bytes on disk in pieces not yet complete, as [start, end) ranges: a restart resumes each piece from
   * its last byte instead of fetching it again whole. Absent in entries written before it existed.
   */
  readonly spans?: Array<[number, number]>
  /**
   * The temp file was synced to disk after the bytes this entry counts were written (a download that
   * stopped cleanly): they survive a power loss or a reboot.
   */
  readonly synced?: boolean
  readonly contentType: string | null
  readonly headers: Record<string, string>
  readonly validator: Validator
  readonly etag: string
  readonly expectedDigest: string | null
  readonly startedAt: number
  readonly updatedAt: number
}

const K = 'key!'
const B = 'blob!'
const P = 'part!'
const F = 'final!'

/** The key of the URL a redirect last led to, and when it was learnt. */
export interface FinalKey {
  readonly key: string
  readonly at: number
}

export class IndexDb {
  private readonly path: string
  // Created in open(): a Level instance opens itself on the next microtask, and an index opened by a
  // constructor nobody closes holds its directory (and its lock) after stop.
  private opened: Level<string, unknown> | null = null
  private readonly init: IndexDbInit
  /** The reopen waiting for room after a full disk stopped the index's writes (see stuck). */
  private recovering: Promise<void> | null = null
  private closing = false

  constructor (path: string, init: IndexDbInit = {}) {
    this.path = path
    this.init = init
  }

  /** A write; one that failed for lack of space may have stopped every later write (see stuck). */
  private async write (op: (db: Level<string, unknown>) => Promise<void>): Promise<void> {
    try {
      await op(this.db)
    } catch (err) {
      this.stuck(err)
      throw err
    }
  }

  /**
   * LevelDB keeps the error of a table it failed to write (a full disk) and refuses every write after
   * it until it is reopened, long after the disk has room again: commits, progress and access times
   * all fail. Reopened once there is room.
   */
  private stuck (err: unknown): void {
    if (this.recovering !== null || this.opened === null || this.closing) return
    if ((err as { code?: unknown } | null)?.code !== 'LEVEL_IO_ERROR' || diskRefusal(err) !== 'no space left on device') return
    this.init.logger?.warn({ err }, 'the cache index could not write (its disk is full); it is reopened once there is room')
    this.recovering = this.reopenWhenRoom().finally(() => { this.recovering = null })
  }

  private async reopenWhenRoom (): Promise<void> {
    for (;;) {
      await sleep(REOPEN_LOOK_EVERY_MS, undefined, { ref: false })
      const db = this.opened
      if (this.closing || db === null) return
      if (this.init.freeBytes !== undefined && await this.init.freeBytes().catch(() => 0) < REOPEN_ROOM) continue
      try {
        await db.close()
        await db.open()
        this.init.logger?.info('the cache index was reopened: it writes again')
        return
      } catch (err) {
        this.init.logger?.warn({ err }, 'the cache index could not be reopened; trying again')
      }
    }
  }

  private get db (): Level<string, unknown> {
    if (this.opened === null) throw new Error('blob index is not open')
    return this.opened
  }

  /**
   * Opens the index; an index of another format version is cleared. `created`: it is new or was cleared
   * (the blob files on disk, if any, are not in it) and carries no version until `markComplete`: a
   * start cut short before that finds it `created` again.
   */
  async open (): Promise<{ reset: boolean, created: boolean }> {
    this.opened ??= new Level<string, unknown>(this.path, { valueEncoding: 'json' })
    this.closing = false
    await this.db.open()
    const version = await this.db.get('meta!version')
    if (version === STORE_FORMAT_VERSION) return { reset: false, created: false }
    const reset = version !== undefined
    if (reset) await this.db.clear()
    return { reset, created: true }
  }

  /** A created index holds every blob on disk now (see open). */
  async markComplete (): Promise<void> {
    await this.db.put('meta!version', STORE_FORMAT_VERSION)
  }

  async close (): Promise<void> {
    this.closing = true
    await this.opened?.close()
  }

  /** Closes the index and deletes it (a damaged one: see BlobStore's start). */
  async destroy (): Promise<void> {
    await this.opened?.close().catch(() => {})
    this.opened = null
    await rm(this.path, { recursive: true, force: true })
  }

  async getKey (key: string): Promise<KeyEntry | undefined> {
    return await this.db.get(K + key) as KeyEntry | undefined
  }

  async getBlob (digest: string): Promise<BlobEntry | undefined> {
    return await this.db.get(B + digest) as BlobEntry | undefined
  }

  async getPartial (key: string): Promise<PartialEntry | undefined> {
    return await this.db.get(P + key) as PartialEntry | undefined
  }

  async putPartial (key: string, entry: PartialEntry): Promise<void> {
    await this.write(async db => { await db.put(P + key, entry) })
  }

  async delPartial (key: string): Promise<void> {
    await this.write(async db => { await db.del(P + key) })
  }

  async getFinal (key: string): Promise<FinalKey | undefined> {
    return await this.db.get(F + key) as FinalKey | undefined
  }

  async putFinal (key: string, final: FinalKey): Promise<void> {
    await this.write(async db => { await db.put(F + key, final) })
  }

  async putBlob (digest: string, entry: BlobEntry): Promise<void> {
    await this.write(async db => { await db.put(B + digest, entry) })
  }

  async putKey (key: string, entry: KeyEntry): Promise<void> {
    await this.write(async db => { await db.put(K + key, entry) })
  }

  async delKey (key: string): Promise<void> {
    await this.write(async db => { await db.del(K + key) })
  }

  /** Commit: key and blob entries written and the partial entry removed in one batch. */
  async commit (key: string, entry: KeyEntry, blob: BlobEntry): Promise<void> {
    await this.write(async db => {
      await db.batch([
        { type: 'put', key: K + key, value: entry },
        { type: 'put', key: B + entry.digest, value: blob },
        { type: 'del', key: P + key }
      ])
    })
  }

  async delBlob (digest: string): Promise<void> {
    await this.write(async db => { await db.del(B + digest) })
  }

  async * blobs (): AsyncGenerator<[string, BlobEntry]> {
    for await (const [k, v] of this.db.iterator({ gte: B, lt: B + '\xff' })) yield [k.slice(B.length), v as BlobEntry]
  }

  async * keys (): AsyncGenerator<[string, KeyEntry]> {
    for await (const [k, v] of this.db.iterator({ gte: K, lt: K + '\xff' })) yield [k.slice(K.length), v as KeyEntry]
  }

  async * finals (): AsyncGenerator<[string, FinalKey]> {
    for await (const [k, v] of this.db.iterator({ gte: F, lt: F + '\xff' })) yield [k.slice(F.length), v as FinalKey]
  }

  async delFinal (key: string): Promise<void> {
    await this.write(async db => { await db.del(F + key) })
  }

  async * partials (): AsyncGenerator<[string, PartialEntry]> {
    for await (const [k, v] of this.db.iterator({ gte: P, lt: P + '\xff' })) yield [k.slice(P.length), v as PartialEntry]
  }
}
