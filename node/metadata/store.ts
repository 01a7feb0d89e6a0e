import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Level } from 'level'
import type { Logger } from '../log.ts'
import { WriteOrder } from '../store/write-order.ts'
import { StartError } from '../errors.ts'
import { diskRefusal, isLocked } from '../store/level-errors.ts'
import { MetadataSpace } from './space.ts'

/**
 * Disk side of the metadata cache. Layout under `dir` (format FORMAT_VERSION):
 *   index/                      LevelDB: `e!<cache key>` -> StoredEntry, `h!<name>` -> hint, `meta!version`,
 *                               `meta!hints` (hints written), `meta!hintEpoch` (see putHints)
 *   bodies/<gg>/<gen>/body      a body as stored (decoded), one directory per generation
 *   bodies/<gg>/<gen>/v-<hash>  derived variants of that body (rewritten, gzip)
 *   tmp/                        bodies being written (renamed into place once complete and fsync'd)
 * A replaced generation is removed after a grace period, so readers that just looked it up can still
 * open it; directories no entry references are swept at start.
 */
export const FORMAT_VERSION = 1

export interface StoredEntry {
  readonly url: string
  readonly status: number
  readonly headers: Record<string, string>
  readonly validator: { etag: string | null, lastModified: string | null }
  /** Body generation (directory name). */
  readonly gen: string
  readonly size: number
  readonly sha256: string
  readonly fetchedAt: number
}

export interface WrittenBody {
  readonly gen: string
  readonly size: number
  readonly sha256: string
}

export interface MetadataStoreInit {
  dir: string
  /** How long a replaced body stays readable. Default 60 s. */
  graceMs?: number
  /** Bytes of bodies (and their variants) kept at most; the least recently used entries go. Default: no bound. */
  maxBytes?: number
  /** Hints kept at most (see putHints). Default: no bound. */
  maxHints?: number
}

/** How long a body dropped for the bound stays readable (a reader between its lookup and its open). */
const EVICTED_GRACE_MS = 1000

const E = 'e!'
const H = 'h!'
const GEN = /^[0-9a-f]{32}$/

export class MetadataStore {
  readonly dir: string
  // Created in start(): a Level instance opens itself on the next microtask, and a node that never
  // serves metadata must not hold the index open (nor its lock) after stop.
  private opened: Level<string, unknown> | null = null
  private readonly log: Logger
  private readonly graceMs: number
  private readonly pending = new Map<string, NodeJS.Timeout>()
  /** Puts and deletes of one key land in the order issued (LevelDB may run them out of order). */
  private readonly writes = new WriteOrder()
  private started = false
  readonly space: MetadataSpace
  private readonly maxHints: number
  /** Hints written since the last clear (a hint written again counts again: see putHints). */
  private hintsWritten = 0
  private epoch = 0

  constructor (components: { logger: Logger }, init: MetadataStoreInit) {
    this.dir = init.dir
    this.log = components.logger
    this.graceMs = init.graceMs ?? 60_000
    this.space = new MetadataSpace(init.maxBytes ?? Number.POSITIVE_INFINITY)
    this.maxHints = init.maxHints ?? Number.POSITIVE_INFINITY
  }

  /**
   * Changes each time the hints are cleared: documents derived (and hints learned from them) before are
   * derived again, so what clients ask for next brings its hints back.
   */
  get hintEpoch (): number {
    return this.epoch
  }

  private get db (): Level<string, unknown> {
    if (this.opened === null) throw new Error('metadata index is not open')
    return this.opened
  }

  async start (): Promise<void> {
    if (this.started) return
    await mkdir(join(this.dir, 'bodies'), { recursive: true })
    await rm(join(this.dir, 'tmp'), { recursive: true, force: true })
    await mkdir(join(this.dir, 'tmp'), { recursive: true })
    let version: unknown
    try {
      this.opened ??= new Level<string, unknown>(join(this.dir, 'index'), { valueEncoding: 'json' })
      await this.db.open()
      version = await this.db.get('meta!version')
    } catch (err) {
      if (isLocked(err)) throw err
      const refused = diskRefusal(err)
      if (refused !== null) throw new StartError(`the metadata cache ${this.dir} cannot be written (${refused}): free some space there or fix its permissions; its index is left as it is`, { cause: err })
      // A damaged index costs the cached documents, not the node.
      this.log.warn({ err }, 'metadata cache index could not be read; it was reset')
      await this.opened?.close().catch(() => {})
      await rm(join(this.dir, 'index'), { recursive: true, force: true })
      this.opened = new Level<string, unknown>(join(this.dir, 'index'), { valueEncoding: 'json' })
      await this.db.open()
      version = null
    }
    if (version !== FORMAT_VERSION) {
      if (version !== undefined) this.log.warn({ version }, 'metadata cache had another format version; it was reset')
      await this.db.clear()
      await this.db.put('meta!version', FORMAT_VERSION)
    }
    await this.sweepOrphans()
    this.hintsWritten = await this.counter('meta!hints')
    this.epoch = await this.counter('meta!hintEpoch')
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    const gens = [...this.pending.keys()]
    for (const t of this.pending.values()) clearTimeout(t)
    this.pending.clear()
    await Promise.all(gens.map(async g => await this.removeGen(g)))
    await this.opened?.close()
  }

  async get (key: string): Promise<StoredEntry | undefined> {
    const entry = await this.db.get(E + key) as StoredEntry | undefined
    if (entry !== undefined) this.space.used(key)
    return entry
  }

  /**
   * Stores `entry` under `key`; the generation it replaces is removed after the grace period. Past the
   * byte bound, the least recently used entries go the same way.
   */
  async put (key: string, entry: StoredEntry, previous: StoredEntry | undefined): Promise<void> {
    this.space.indexed(key, entry.gen)
    await this.writes.run(key, () => this.db.put(E + key, entry))
    if (previous !== undefined && previous.gen !== entry.gen) this.retire(previous.gen)
    const victims = this.space.victims(key)
    for (const [victim, gen] of victims) {
      await this.writes.run(victim, () => this.db.del(E + victim))
      // Nobody asked for it lately: a short grace, or a flood of new documents keeps a minute of them
      // on disk beside the bound (0.8 GB beside 64 MiB while 1,500 packuments came in).
      this.retire(gen, Math.min(this.graceMs, EVICTED_GRACE_MS))
    }
    if (victims.length > 0) this.log.debug({ dropped: victims.length, bytes: this.space.bytes }, 'least recently used metadata dropped (the metadata cache\'s bound)')
  }

  async delete (key: string, previous: StoredEntry | undefined): Promise<void> {
    this.space.removed(key)
    await this.writes.run(key, () => this.db.del(E + key))
    if (previous !== undefined) this.retire(previous.gen)
  }

  /**
   * Small facts learned from documents (e.g. file path -> published digest), kept across restarts. A
   * document's hints are written when it is derived (once per body), so writes count the hints well
   * enough: past `maxHints` they are all cleared and the epoch moves on, so each document is derived,
   * and its hints learned, again when next asked for (clients ask for an index before its files).
   */
  async putHints (pairs: ReadonlyArray<readonly [string, string]>): Promise<void> {
    if (pairs.length === 0) return
    // One batch at a time: a batch landing while a clear runs would be cleared with the rest.
    await this.writes.run(H, async () => await this.writeHints(pairs))
  }

  private async writeHints (pairs: ReadonlyArray<readonly [string, string]>): Promise<void> {
    this.hintsWritten += pairs.length
    if (this.hintsWritten > this.maxHints) {
      this.log.info({ hints: this.hintsWritten, max: this.maxHints }, 'metadata hints cleared (their bound); documents asked for again learn theirs again')
      this.hintsWritten = pairs.length
      this.epoch++
      await this.db.clear({ gte: H, lt: H + '\xff' })
      await this.db.put('meta!hintEpoch', this.epoch)
    }
    await this.db.batch([
      ...pairs.map(([k, v]) => ({ type: 'put' as const, key: H + k, value: v })),
      { type: 'put' as const, key: 'meta!hints', value: this.hintsWritten }
    ])
  }

  private async counter (key: string): Promise<number> {
    const v = await this.db.get(key)
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0
  }

  async getHint (name: string): Promise<string | undefined> {
    const v = await this.db.get(H + name)
    return typeof v === 'string' ? v : undefined
  }

  bodyPath (gen: string): string {
    return join(this.genDir(gen), 'body')
  }

  variantPath (gen: string, variantId: string): string {
    return join(this.genDir(gen), 'v-' + createHash('sha256').update(variantId).digest('hex').slice(0, 32))
  }

  /** Writes a new body generation from `source` (hashed on the way), fsync'd and renamed into place. */
  async writeBody (source: Readable, options: { signal?: AbortSignal } = {}): Promise<WrittenBody> {
    const gen = randomBytes(16).toString('hex')
    const hash = createHash('sha256')
    let size = 0
    const tap = new Transform({
      transform (chunk: Buffer, _enc, cb) { hash.update(chunk); size += chunk.length; cb(null, chunk) }
    })
    const tmp = this.tempPath()
    try {
      await pipeline(source, tap, createWriteStream(tmp, { flush: true }), { signal: options.signal })
      await mkdir(this.genDir(gen), { recursive: true })
      await rename(tmp, this.bodyPath(gen))
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    this.space.added(gen, size)
    return { gen, size, sha256: hash.digest('hex') }
  }

  /** Writes a variant atomically (concurrent writers of the same variant produce the same bytes). */
  async writeVariant (gen: string, variantId: string, source: Readable | Buffer): Promise<string> {
    const path = this.variantPath(gen, variantId)
    const tmp = this.tempPath()
    try {
      const input = Buffer.isBuffer(source) ? [source] : source
      const out = createWriteStream(tmp, { flush: true })
      await pipeline(input, out)
      await rename(tmp, path)
      this.space.added(gen, out.bytesWritten, true)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    return path
  }

  async exists (path: string): Promise<boolean> {
    return await stat(path).then(() => true, () => false)
  }

  openRange (path: string, start: number, end: number): Readable {
    if (end <= start) return Readable.from([])
    return createReadStream(path, { start, end: end - 1, highWaterMark: 256 * 1024 })
  }

  /** Removes a generation nobody references (a body written but never indexed). */
  async discard (gen: string): Promise<void> {
    this.space.retired(gen)
    await this.removeGen(gen)
  }

  private genDir (gen: string): string {
    if (!GEN.test(gen)) throw new TypeError('invalid metadata body generation')
    return join(this.dir, 'bodies', gen.slice(0, 2), gen)
  }

  private tempPath (): string {
    return join(this.dir, 'tmp', randomBytes(12).toString('hex'))
  }

  private retire (gen: string, graceMs = this.graceMs): void {
    this.space.retired(gen)
    if (this.pending.has(gen)) return
    const t = setTimeout(() => {
      this.pending.delete(gen)
      void this.removeGen(gen)
    }, graceMs)
    t.unref()
    this.pending.set(gen, t)
  }

  private async removeGen (gen: string): Promise<void> {
    await rm(this.genDir(gen), { recursive: true, force: true }).catch((err: unknown) => {
      this.log.warn({ err, gen }, 'could not remove an old metadata body')
    })
  }

  /** Removes body directories no entry references, and takes the account of the others (MetadataSpace). */
  private async sweepOrphans (): Promise<void> {
    const entries: Array<{ key: string, gen: string, at: number }> = []
    for await (const [k, v] of this.db.iterator({ gte: E, lt: E + '\xff' })) {
      const e = v as StoredEntry
      entries.push({ key: k.slice(E.length), gen: e.gen, at: e.fetchedAt })
    }
    const live = new Set(entries.map(e => e.gen))
    // Least recently used first: the last fetch (or refresh) stands for the last use after a restart.
    for (const e of entries.sort((a, b) => a.at - b.at)) this.space.indexed(e.key, e.gen)
    const root = join(this.dir, 'bodies')
    for (const shard of await readdir(root)) {
      for (const gen of await readdir(join(root, shard)).catch(() => [] as string[])) {
        if (!live.has(gen)) await rm(join(root, shard, gen), { recursive: true, force: true })
        else this.space.added(gen, await dirBytes(join(root, shard, gen)))
      }
    }
  }
}

/** Bytes of the files in a body generation's directory. */
async function dirBytes (dir: string): Promise<number> {
  let bytes = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) bytes += await stat(join(dir, name)).then(s => s.size, () => 0)
  return bytes
}
