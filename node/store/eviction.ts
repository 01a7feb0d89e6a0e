/**
 * LRU eviction policy. Pure: given the blobs, the budget and the space a new download needs, it
 * returns which blobs to delete. Eviction starts above the high watermark (or below the free-disk
 * floor) and goes down to the low watermark, oldest access first, never touching a blob that is
 * being read or written, or pinned.
 */

export interface EvictionEntry {
  readonly digest: string
  readonly size: number
  readonly lastAccess: number
  /** Open readers or writers. */
  readonly inUse: boolean
  readonly pinned: boolean
}

export interface EvictionBudget {
  /** Our own bytes may not exceed this. */
  readonly maxBytes: number
  /** Free disk must stay at or above this. */
  readonly minFreeBytes: number
  /** Fractions of maxBytes: start evicting above high, stop at low. */
  readonly highWatermark: number
  readonly lowWatermark: number
}

export interface EvictionState {
  /** Bytes of committed blobs plus space reserved by downloads in progress. */
  readonly usedBytes: number
  /** Free bytes on the cache's file system (Infinity when unknown). */
  readonly freeBytes: number
  /** Bytes about to be written (0 for a periodic sweep). */
  readonly incomingBytes: number
}

export interface EvictionPlan {
  readonly evict: string[]
  readonly freedBytes: number
  /** False when even evicting every evictable blob cannot make room for incomingBytes. */
  readonly fits: boolean
  /**
   * Evicting every evictable blob would not bring the free disk up to its floor (other files fill the
   * disk): no blob is evicted for the floor then, only for the byte budget.
   */
  readonly floorUnreachable: boolean
}

export function planEviction (entries: readonly EvictionEntry[], budget: EvictionBudget, state: EvictionState): EvictionPlan {
  const high = budget.maxBytes * budget.highWatermark
  const low = budget.maxBytes * budget.lowWatermark
  const candidates = entries
    .filter(e => !e.inUse && !e.pinned)
    .sort((a, b) => a.lastAccess - b.lastAccess || (a.digest < b.digest ? -1 : 1))
  const evictable = candidates.reduce((n, e) => n + e.size, 0)
  const floorUnreachable = state.freeBytes + evictable - state.incomingBytes < budget.minFreeBytes
  const belowFloor = (freed: number): boolean => state.freeBytes + freed - state.incomingBytes < budget.minFreeBytes
  // A floor no eviction reaches does not empty the cache for nothing: only the byte budget evicts then.
  const over = (freed: number, target: number): boolean =>
    state.usedBytes - freed + state.incomingBytes > target || (!floorUnreachable && belowFloor(freed))
  const mustFit = (freed: number): boolean =>
    state.usedBytes - freed + state.incomingBytes <= budget.maxBytes && !belowFloor(freed)

  if (state.incomingBytes > 0) {
    // Evicting cannot make room for this file: keep the cache as it is (the file is passed through).
    if (state.incomingBytes > budget.maxBytes || !mustFit(evictable)) return { evict: [], freedBytes: 0, fits: false, floorUnreachable }
  }
  if (!over(0, high)) return { evict: [], freedBytes: 0, fits: mustFit(0), floorUnreachable }
  const evict: string[] = []
  let freed = 0
  for (const e of candidates) {
    if (!over(freed, low)) break
    evict.push(e.digest)
    freed += e.size
  }
  return { evict, freedBytes: freed, fits: mustFit(freed), floorUnreachable }
}
