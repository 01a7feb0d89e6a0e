import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { LRUCache } from 'lru-cache'
import { lruCache } from '../../lru.ts'
import type { Logger } from '../../log.ts'

/** A tag's resolution, as upstream last confirmed it for one Accept variant and one client credential. */
export interface TagRecord {
  /** `sha256:<hex>` of the manifest. */
  readonly digest: string
  /** Exact Content-Type upstream gave the manifest. */
  readonly contentType: string
  readonly size: number
  /** When upstream last confirmed it (ms since epoch). */
  readonly checkedAt: number
}

export interface OciStateInit {
  /** Directory of the registry state, e.g. `<cache.dir>/oci`. */
  dir: string
  /** Most tag records kept in memory. Default 10 000. */
  maxTags?: number
}

const DIGEST = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/

/**
 * What the registry handler must remember across restarts, as small files (atomic rename, no lock, no
 * lifecycle): which digests upstream served anonymously (public bytes: anyone may get them from the
 * cache) and how tags resolved (tag → manifest digest, so a tag can be answered stale while upstream is
 * down). Manifest and blob bytes themselves live in the blob store, by digest.
 *
 *   <dir>/public/<ab>/<algorithm>-<hex>   empty marker
 *   <dir>/tags/<ab>/<sha256 of key>.json  { key, digest, contentType, size, checkedAt }
 */
export class OciState {
  private readonly dir: string
  private readonly log: Logger
  private readonly publicKnown = new Set<string>()
  private readonly tags: LRUCache<string, TagRecord>
  private readonly variants: LRUCache<string, Record<string, TagRecord>>

  constructor (components: { logger: Logger }, init: OciStateInit) {
    this.dir = init.dir
    this.log = components.logger
    this.tags = lruCache(init.maxTags ?? 10_000)
    this.variants = lruCache(init.maxTags ?? 10_000)
  }

  async isPublic (digest: string): Promise<boolean> {
    if (this.publicKnown.has(digest)) return true
    const path = this.publicPath(digest)
    if (path === null) return false
    const found = await stat(path).then(() => true, () => false)
    if (found) this.publicKnown.add(digest)
    return found
  }

  async markPublic (digest: string): Promise<void> {
    if (this.publicKnown.has(digest)) return
    const path = this.publicPath(digest)
    if (path === null) return
    this.publicKnown.add(digest)
    await this.write(path, '')
  }

  async getTag (key: string): Promise<TagRecord | undefined> {
    const mem = this.tags.get(key)
    if (mem !== undefined) return mem
    try {
      const doc = JSON.parse(await readFile(this.tagPath(key), 'utf8')) as TagRecord & { key?: string }
      const rec = doc.key === key ? tagRecordOf(doc) : undefined
      if (rec !== undefined) this.tags.set(key, rec)
      return rec
    } catch {
      return undefined
    }
  }

  /** Records a tag; `persist` false keeps it in memory only (records of a client credential). */
  async putTag (key: string, rec: TagRecord, persist: boolean): Promise<void> {
    this.tags.set(key, rec)
    if (persist) await this.write(this.tagPath(key), JSON.stringify({ key, ...rec }))
  }

  /**
   * A tag's anonymous records by Accept variant (`name`: upstream, repository and tag): what any client
   * may be answered from while the registry is away, whatever it sent as Accept or credentials.
   */
  async publicVariants (name: string): Promise<Record<string, TagRecord>> {
    const mem = this.variants.get(name)
    if (mem !== undefined) return mem
    try {
      const doc = JSON.parse(await readFile(this.tagPath(`variants\n${name}`), 'utf8')) as { name?: string, variants?: Record<string, TagRecord> }
      if (doc.name !== name || typeof doc.variants !== 'object' || doc.variants === null) return {}
      const out: Record<string, TagRecord> = {}
      for (const [variant, r] of Object.entries(doc.variants)) {
        const rec = tagRecordOf(r)
        if (rec !== undefined) out[variant] = rec
      }
      this.variants.set(name, out)
      return out
    } catch {
      return {}
    }
  }

  async putPublicVariant (name: string, variant: string, rec: TagRecord): Promise<void> {
    const all = { ...await this.publicVariants(name), [variant]: rec }
    this.variants.set(name, all)
    await this.write(this.tagPath(`variants\n${name}`), JSON.stringify({ name, variants: all }))
  }

  private publicPath (digest: string): string | null {
    const m = DIGEST.exec(digest)
    if (m === null) return null
    const hex = m[2] as string
    return join(this.dir, 'public', hex.slice(0, 2), `${m[1] as string}-${hex}`)
  }

  private tagPath (key: string): string {
    const h = createHash('sha256').update(key).digest('hex')
    return join(this.dir, 'tags', h.slice(0, 2), `${h}.json`)
  }

  private async write (path: string, content: string): Promise<void> {
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
    try {
      await mkdir(dirname(path), { recursive: true })
      await writeFile(tmp, content)
      await rename(tmp, path)
    } catch (err) {
      // Losing a record costs an upstream check later, never a wrong answer.
      this.log.warn({ err }, 'could not save registry state')
      await rm(tmp, { force: true }).catch(() => {})
    }
  }
}

/** A tag record read back from disk, or undefined when it is not one (a damaged or foreign file). */
function tagRecordOf (doc: Partial<TagRecord>): TagRecord | undefined {
  if (typeof doc.digest !== 'string' || !DIGEST.test(doc.digest)) return undefined
  return { digest: doc.digest, contentType: String(doc.contentType), size: Number(doc.size), checkedAt: Number(doc.checkedAt) }
}
