import type { EvictionEntry } from './eviction.ts'
import type { PartialEntry } from './index-db.ts'
import { PieceBitmap } from './partial.ts'

/** Eviction ids of partial downloads; blob digests are hex, so they never start with it. */
const ID_PREFIX = 'partial:'

/** Bytes a progress entry says are on disk: its finished pieces and the started parts of others. */
export function bytesOnDisk (entry: PartialEntry): number {
  if (entry.pieceSize <= 0 || entry.size <= 0) return 0
  const count = Math.ceil(entry.size / entry.pieceSize)
  const pieces = PieceBitmap.fromBase64(count, entry.bitmap).done * entry.pieceSize
  const spans = (entry.spans ?? []).reduce((n, [start, end]) => n + Math.max(0, end - start), 0)
  return Math.min(entry.size, pieces + spans)
}

/**
 * The disk space partial downloads take. A download under way holds its key and is covered by its
 * reservation; one that stopped to resume later is idle: its bytes count against the budget like a
 * blob's, and it is evicted like one, by the time it was last written (a flaky upstream otherwise left
 * temp files beside a full cache until cache.chunk_ttl_hours).
 */
export class PartialSpace {
  private readonly entries = new Map<string, { bytes: number, at: number }>()
  private readonly holds = new Map<string, number>()

  saved (key: string, entry: PartialEntry): void {
    this.entries.set(key, { bytes: bytesOnDisk(entry), at: entry.updatedAt })
  }

  gone (key: string): void {
    this.entries.delete(key)
  }

  /** A download of `key` runs: its partial is not evicted until the returned function is called. */
  hold (key: string): () => void {
    this.holds.set(key, (this.holds.get(key) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const n = (this.holds.get(key) ?? 1) - 1
      if (n <= 0) this.holds.delete(key)
      else this.holds.set(key, n)
    }
  }

  held (key: string): boolean {
    return this.holds.has(key)
  }

  idleBytes (): number {
    let n = 0
    for (const [key, e] of this.entries) if (!this.holds.has(key)) n += e.bytes
    return n
  }

  /** Idle partials as eviction candidates (ids made by this class: see keyOf). */
  evictionEntries (): EvictionEntry[] {
    const out: EvictionEntry[] = []
    for (const [key, e] of this.entries) {
      if (this.holds.has(key) || e.bytes === 0) continue
      out.push({ digest: ID_PREFIX + key, size: e.bytes, lastAccess: e.at, inUse: false, pinned: false })
    }
    return out
  }

  /** The partial's key when the eviction id names one, else null (a blob's digest). */
  static keyOf (id: string): string | null {
    return id.startsWith(ID_PREFIX) ? id.slice(ID_PREFIX.length) : null
  }
}
