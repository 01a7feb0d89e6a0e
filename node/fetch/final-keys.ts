import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { FinalKey } from '../store/index-db.ts'
import type { AcquireOptions } from './acquire-types.ts'
import type { BlobIdentity } from './identity.ts'
import { firstRange } from './response-meta.ts'
import { firstAsk } from './temp-file.ts'
import { lruCache } from '../lru.ts'

/** How long a learnt redirect target is trusted for hits without asking upstream again. */
export const FINAL_KEY_TTL_MS = 10 * 60_000
const FINAL_KEYS_MAX = 10_000
/**
 * The first range of a download that learns which version the upstream serves when peers may have the
 * rest (also the cluster's first range of a blob named by its URL). Every member asks it of the upstream
 * even when a peer holds the blob, so it is what one round trip brings: 128 KiB cost five nodes 1.5 × a
 * 1 MiB file. The download's other connections fetch the rest meanwhile.
 */
export const LEARNING_RANGE = 16 << 10

/**
 * Where URLs led (`cache_key_source: final`): original-URL key → the final URL's key, the last used
 * 10 000 in memory, each also in the index (written when it changed), so a cached file is found after a
 * restart while its upstream is down.
 */
export class FinalKeys {
  private readonly store: BlobStore
  private readonly log: Logger
  // No ttl: `last` wants an entry however old; only `fresh` looks at its age.
  private readonly recent = lruCache<string, FinalKey>(FINAL_KEYS_MAX)

  constructor (store: BlobStore, log: Logger) {
    this.store = store
    this.log = log
  }

  /** Where the URL led within FINAL_KEY_TTL_MS (a hit may skip the upstream), else undefined. */
  fresh (original: string): FinalKey | undefined {
    const known = this.recent.get(original)
    return known !== undefined && Date.now() - known.at < FINAL_KEY_TTL_MS ? known : undefined
  }

  /** Where the URL led last, however long ago (also before a restart). */
  async last (original: string): Promise<FinalKey | undefined> {
    return this.recent.get(original) ?? await this.store.getFinal(original).catch(() => undefined)
  }

  remember (original: string, key: string): void {
    const before = this.recent.get(original)
    const at = Date.now()
    if (before?.key !== key) this.store.putFinal(original, { key, at }).catch((err: unknown) => { this.log.debug({ err }, 'could not save a final URL key') })
    this.recent.set(original, { key, at })
  }

  /**
   * The range that learns where a URL leads (it is also the download's first; `withPeers`: members may
   * have the rest, so it is short). Where it led last time (also before a restart) says more: a download
   * of it that stopped part-way goes on at its first missing byte instead of fetching the start again,
   * and a file already cached needs only a short range to tell whether it is still the one served.
   */
  async firstAsk (identity: BlobIdentity, options: AcquireOptions, chunkSize: number, withPeers: boolean): Promise<{ start: number, end: number }> {
    const hint = Math.max(0, options.hint ?? 0)
    const cap = (ask: { start: number, end: number }): { start: number, end: number } =>
      withPeers ? { start: ask.start, end: Math.min(ask.end, ask.start + LEARNING_RANGE - 1) } : ask
    const last = await this.last(identity.key)
    if (last !== undefined && options.hint === undefined) {
      const partial = await this.store.getPartial(last.key).catch(() => undefined)
      if (partial !== undefined) return cap(firstAsk(partial, chunkSize, hint))
      if (await this.store.lookup(last.key) !== undefined) return { start: 0, end: LEARNING_RANGE - 1 }
    }
    return cap({ start: hint, end: hint + firstRange(chunkSize) - 1 })
  }
}
