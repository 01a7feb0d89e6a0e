/** Keep dropping until the bodies take this share of the cap (room for a while before the next trim). */
const LOW_WATERMARK = 0.85

/**
 * The metadata cache's size on disk: bytes per body generation (the body and its variants) and the
 * entries in least recently used order. A mirror sees an endless stream of package names; without a
 * bound their documents filled the disk beyond the cache's budget.
 */
export class MetadataSpace {
  readonly maxBytes: number
  private readonly genBytes = new Map<string, number>()
  /** Entry key → its generation, least recently used first (a Map keeps insertion order). */
  private readonly byKey = new Map<string, string>()
  private live = 0

  constructor (maxBytes: number) {
    this.maxBytes = maxBytes
  }

  /** Bytes of the generations entries use or are about to use. */
  get bytes (): number {
    return this.live
  }

  get entries (): number {
    return this.byKey.size
  }

  /** Bytes written to a generation: a new body, or a variant of a live one. */
  added (gen: string, bytes: number, variant = false): void {
    if (variant && !this.genBytes.has(gen)) return
    this.genBytes.set(gen, (this.genBytes.get(gen) ?? 0) + bytes)
    this.live += bytes
  }

  /** `key` now names `gen`, and was just used. */
  indexed (key: string, gen: string): void {
    this.byKey.delete(key)
    this.byKey.set(key, gen)
  }

  used (key: string): void {
    const gen = this.byKey.get(key)
    if (gen === undefined) return
    this.byKey.delete(key)
    this.byKey.set(key, gen)
  }

  removed (key: string): void {
    this.byKey.delete(key)
  }

  /** A generation no entry uses any more (removed after a grace period): its bytes are free. */
  retired (gen: string): void {
    this.live -= this.genBytes.get(gen) ?? 0
    this.genBytes.delete(gen)
  }

  /**
   * When the bytes are over the cap, the entries to drop, least recently used first, until they are
   * under the low watermark; `keep` (the entry just stored) stays. Taken out of the account at once, so
   * a trim running beside this one picks others.
   */
  victims (keep: string): Array<[key: string, gen: string]> {
    if (this.live <= this.maxBytes) return []
    const out: Array<[string, string]> = []
    for (const [key, gen] of this.byKey) {
      if (this.live <= this.maxBytes * LOW_WATERMARK) break
      if (key === keep) continue
      out.push([key, gen])
      this.byKey.delete(key)
      this.retired(gen)
    }
    return out
  }
}

/**
 * What index pages, packuments and manifests may take on disk, beside the files (cache.max_size_gb): a
 * tenth of it, at least 64 MiB (a few of the largest npm packuments).
 */
export function metadataBudget (maxSizeGb: number): number {
  return Math.max(64 << 20, Math.floor(maxSizeGb * 2 ** 30 / 10))
}

/** Hints (file → digest) kept: about 130 bytes of index each, within the same tenth; at least 500 000. */
export function hintBudget (maxSizeGb: number): number {
  return Math.max(500_000, Math.floor(metadataBudget(maxSizeGb) / 130))
}
