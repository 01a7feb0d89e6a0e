import { canonicalUrl } from '../../fetch/identity.ts'
import { findBaseUrl } from './base-url.ts'
import type { Logger } from '../../log.ts'
import type { MetadataCache } from '../../metadata/cache.ts'
import type { MetadataResult } from '../../metadata/types.ts'
import type { RepodataCoding } from './paths.ts'
import { decoderFor, scanRecords } from './repodata-index.ts'
import { shardIndexBases, shardRecords } from './shard-index.ts'

/** Sharded indexes and shards are read whole; past this they are left alone (a real one is a few MB). */
const MAX_SHARD_DOC = 64 << 20

export interface RepodataIndexerComponents {
  metadata: MetadataCache
  logger: Logger
}

/** The directory a repodata document or package lives in (`.../linux-64/`), canonical. */
export function subdirKey (url: URL): string {
  return canonicalUrl(new URL('.', url))
}

/** The directory `info.base_url` in a repodata document's head names for its packages (relative to `url`), if any. */
export function packagesDir (head: string, url: URL): string | null {
  const base = findBaseUrl(head)
  if (base === null || base === '') return null
  try {
    return canonicalUrl(new URL(base.endsWith('/') ? base : base + '/', url))
  } catch {
    return null
  }
}

/**
 * Learns `package file → sha256` from the repodata a client was served, in the background (the response
 * does not wait), and remembers it in the metadata cache's hints, once per repodata body. A package
 * request for a subdir whose repodata is being read waits for that reading to finish.
 *
 * Clients of sharded repodata (CEP-16) never read the whole document: the sharded index tells where the
 * shards and the packages live, and each shard served adds the digests of its records.
 */
export class RepodataIndexer {
  private readonly metadata: MetadataCache
  private readonly log: Logger
  private readonly jobs = new Map<string, Promise<void>>()
  private readonly shardJobs = new Map<string, Promise<void>>()

  constructor (components: RepodataIndexerComponents) {
    this.metadata = components.metadata
    this.log = components.logger.child({ component: 'conda' })
  }

  /** Starts reading `result` (the repodata at `url`) unless that body was read already. */
  ensure (url: URL, coding: RepodataCoding, result: MetadataResult): void {
    if (result.info === null || result.status !== 200) return
    const dir = subdirKey(url)
    if (this.jobs.has(dir)) return
    if (decoderFor(coding) === undefined) {
      this.log.debug({ url: url.href }, 'repodata in a coding that cannot be read here; its packages are keyed by URL')
      return
    }
    this.start(dir, url, async () => { await this.read(url, coding, result, dir) })
  }

  /**
   * Reads the repodata `sibling` gets for the subdir of `url` (repodata a client was served in a coding
   * not read here: bzip2, whose decoder would hold the event loop for seconds), if it gets one.
   */
  ensureFrom (url: URL, sibling: () => Promise<{ url: URL, coding: RepodataCoding, result: MetadataResult } | null>): void {
    const dir = subdirKey(url)
    if (this.jobs.has(dir)) return
    this.start(dir, url, async () => {
      const got = await sibling()
      if (got === null || got.result.info === null || got.result.status !== 200) return
      await this.read(got.url, got.coding, got.result, dir)
    })
  }

  private start (dir: string, url: URL, work: () => Promise<void>): void {
    const job = work().catch((err: unknown) => {
      this.log.warn({ err, url: url.href }, 'could not read package digests from repodata')
    }).finally(() => this.jobs.delete(dir))
    this.jobs.set(dir, job)
  }

  /** Remembers `file → sha256` of every package record in `result`, once per repodata body. */
  private async read (url: URL, coding: RepodataCoding, result: MetadataResult, dir: string): Promise<void> {
    const info = result.info
    const decoder = decoderFor(coding)
    if (info === null || decoder === undefined) return
    const marker = `conda:indexed:${canonicalUrl(url)}`
    if (await this.metadata.recall(marker) === info.sha256) return
    const raw = result.body.open()
    const text = decoder === null ? raw : raw.pipe(decoder)
    if (decoder !== null) raw.once('error', (err) => decoder.destroy(err))
    // Repodata v2 may put its packages elsewhere (`info.base_url`): their digests are kept under that directory.
    let packages = dir
    const count = await scanRecords(text, async (batch) => {
      await this.metadata.remember(batch.map(([file, sha]) => [`conda:${packages}|${file}`, sha] as const))
    }, { onHead: (head) => { packages = packagesDir(head, url) ?? dir } })
    await this.metadata.remember([[marker, info.sha256]])
    this.log.debug({ url: url.href, packages: count }, 'repodata read for package digests')
  }

  /** Remembers, from a sharded index at `url`, which package directory the shards under its shards base describe. */
  ensureShardIndex (url: URL, result: MetadataResult): void {
    const info = result.info
    if (info === null || result.status !== 200 || result.body.size > MAX_SHARD_DOC) return
    this.track(`index:${canonicalUrl(url)}`, async () => {
      const bases = shardIndexBases(await result.body.read(), url)
      if (bases === null) return
      await this.metadata.remember([[`conda:shards:${canonicalUrl(bases.shards)}`, canonicalUrl(bases.packages)]])
    })
  }

  /** Learns the package digests of a shard at `url` (once per shard body), if its index was seen. */
  ensureShard (url: URL, result: MetadataResult): void {
    const info = result.info
    if (info === null || result.status !== 200 || result.body.size > MAX_SHARD_DOC) return
    const marker = `conda:indexed:${canonicalUrl(url)}`
    this.track(`shard:${canonicalUrl(url)}`, async () => {
      // The client read the index just before: let its reading land first.
      await Promise.allSettled([...this.shardJobs].filter(([k]) => k.startsWith('index:')).map(([, job]) => job))
      const packages = await this.metadata.recall(`conda:shards:${subdirKey(url)}`)
      if (packages === undefined || await this.metadata.recall(marker) === info.sha256) return
      const records = shardRecords(await result.body.read())
      await this.metadata.remember([...records.map(([file, sha]) => [`conda:${packages}|${file}`, sha] as const), [marker, info.sha256]])
    })
  }

  private track (key: string, work: () => Promise<void>): void {
    if (this.shardJobs.has(key)) return
    const job = work().catch((err: unknown) => {
      this.log.warn({ err, key }, 'could not read package digests from sharded repodata')
    }).finally(() => this.shardJobs.delete(key))
    this.shardJobs.set(key, job)
  }

  /** The sha256 repodata published for `file` in the subdir of `url`, or null. */
  async sha256For (url: URL, file: string): Promise<string | null> {
    const dir = subdirKey(url)
    // Repodata being read may name this directory as its base_url: wait for all of them (they are few).
    if (this.jobs.size > 0) await Promise.allSettled([...this.jobs.values()])
    // Shards being read are few and short: wait for all of them rather than track which directory each describes.
    if (this.shardJobs.size > 0) await Promise.allSettled([...this.shardJobs.values()])
    const v = await this.metadata.recall(`conda:${dir}|${file}`)
    return v !== undefined && /^[0-9a-f]{64}$/.test(v) ? v : null
  }

  /** Waits for every reading in progress (used when stopping). */
  async settle (): Promise<void> {
    await Promise.allSettled([...this.jobs.values(), ...this.shardJobs.values()])
  }
}
