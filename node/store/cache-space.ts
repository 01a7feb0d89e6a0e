import type { Logger } from '../log.ts'
import { planEviction } from './eviction.ts'
import type { EvictionBudget, EvictionEntry, EvictionPlan } from './eviction.ts'
import { WriteOrder } from './write-order.ts'

/** How often a file too large for the whole cache, or a free-disk floor out of reach, is warned about (debug in between). */
const SAID_HOURLY_MS = 3600_000
/** How often "no room in the cache" is warned about (debug in between, counted in the next warning's `also`). */
const NO_ROOM_SAID_EVERY_MS = 60_000
/** The one queue space plans wait in. */
const SPACE = 'space'
/** Plans made for one reservation at most (see reserveNow). */
const PLAN_ROUNDS = 3

/** What the cache's space is made of, as the store holds it. */
export interface CacheSpaceHost {
  logger: Logger
  /** The disk's free bytes (infinite when they cannot be read). */
  freeBytes: () => Promise<number>
  /** Bytes of the blobs held. */
  usedBytes: () => number
  /** Bytes of stopped partial downloads (see PartialSpace). */
  idlePartialBytes: () => number
  /** Blobs and partial downloads, as eviction weighs them. */
  entries: () => EvictionEntry[]
  /** Evicts one of `entries` by its id. False when the entry came into use (or was taken up) since the plan: it stays. */
  evictOne: (id: string) => Promise<boolean>
}

/** Says a message at warn level at most once per `everyMs` (debug in between), counting those in between. */
class WarnEvery {
  private saidAt = Number.NEGATIVE_INFINITY
  private since = 0
  private readonly everyMs: number

  constructor (everyMs: number) {
    this.everyMs = everyMs
  }

  say (log: Logger, fields: Record<string, unknown>, msg: string, counted = false): void {
    const now = Date.now()
    const warn = now - this.saidAt >= this.everyMs
    if (warn) this.saidAt = now
    log[warn ? 'warn' : 'debug'](counted && warn ? { also: this.since, ...fields } : fields, msg)
    this.since = warn ? 0 : this.since + 1
  }
}

/**
 * The cache's budget: space for downloads is reserved before they write, least recently used blobs
 * (and stopped partial downloads) are evicted to make it, and the cache is brought back under its high
 * watermark and free-disk floor. Plans run one at a time, each seeing the others' reservations.
 */
export class CacheSpace {
  readonly budget: EvictionBudget
  private readonly host: CacheSpaceHost
  private readonly lruEnabled: boolean
  private reservedBytes = 0
  /** Reservations' written bytes (temp files are sparse: what is not written yet is not taken from the disk yet). */
  private readonly reservations = new Map<() => number, number>()
  /**
   * Space is planned one reservation (or sweep) at a time: plans made side by side from the same state
   * each evicted for themselves and each counted the same victims' bytes as freed, so downloads starting
   * together overshot the budget (and evicted more than needed).
   */
  private readonly plans = new WriteOrder()
  private readonly tooLarge = new WarnEvery(SAID_HOURLY_MS)
  private readonly noRoom = new WarnEvery(NO_ROOM_SAID_EVERY_MS)
  private readonly floorOutOfReach = new WarnEvery(SAID_HOURLY_MS)

  constructor (host: CacheSpaceHost, init: { budget: EvictionBudget, lruEnabled: boolean }) {
    this.host = host
    this.budget = init.budget
    this.lruEnabled = init.lruEnabled
  }

  /** Downloads under way hold reservations. */
  get busy (): boolean {
    return this.reservedBytes > 0
  }

  /**
   * Reserves space for a download of `bytes`, evicting least recently used blobs when needed.
   * False when the file cannot be cached (larger than the budget, or the disk is too full): the
   * caller passes it through instead.
   */
  async reserve (bytes: number, written?: () => number): Promise<boolean> {
    if (bytes > this.budget.maxBytes) {
      // Said where an admin looks, once an hour: every request for such a file downloads it again.
      this.tooLarge.say(this.host.logger, { bytes, max: this.budget.maxBytes }, 'a file larger than the whole cache (cache.max_size_gb) is passed through uncached: every request for it downloads it again')
      return false
    }
    return await this.plans.run(SPACE, async () => await this.reserveNow(bytes, written))
  }

  /** Ends a reservation (`written`: the one given to reserve). */
  unreserve (bytes: number, written?: () => number): void {
    this.reservedBytes = Math.max(0, this.reservedBytes - bytes)
    if (written !== undefined) this.reservations.delete(written)
  }

  /** Brings the cache back under its high watermark and free-disk floor; how many entries went. */
  async evict (): Promise<number> {
    return await this.plans.run(SPACE, async () => {
      const free = await this.freeForPlans()
      const plan = planEviction(this.host.entries(), this.budget, { usedBytes: this.spentBytes(), freeBytes: free, incomingBytes: 0 })
      if (plan.floorUnreachable) {
        // Said at start (the first sweep) and once an hour: the cache is kept, but nothing new fits.
        this.floorOutOfReach.say(this.host.logger, { free, minFree: this.budget.minFreeBytes, used: this.host.usedBytes() }, 'the disk cannot give cache.min_free_gb even with the cache emptied: the cache is kept as it is, and new files are passed through uncached until the disk has room')
      }
      let evicted = 0
      for (const id of plan.evict) if (await this.host.evictOne(id)) evicted++
      return evicted
    })
  }

  private async reserveNow (bytes: number, written: (() => number) | undefined): Promise<boolean> {
    let plan: EvictionPlan
    let free: number
    let kept = false
    // A victim that came into use while the plan was carried out stays; the plan is made again from
    // what is there now (a few times at most: each round evicts what it can).
    for (let round = 1; ; round++) {
      free = await this.freeForPlans()
      plan = planEviction(this.host.entries(), this.budget, { usedBytes: this.spentBytes(), freeBytes: free, incomingBytes: bytes })
      if (plan.evict.length === 0 || !this.lruEnabled) break
      kept = false
      for (const id of plan.evict) if (!await this.host.evictOne(id)) kept = true
      if (!kept || round === PLAN_ROUNDS) break
    }
    // The last round's plan counted as freed what stayed: the file fits only if it does without more evictions.
    if (kept) plan = planEviction(this.host.entries(), this.budget, { usedBytes: this.spentBytes(), freeBytes: free = await this.freeForPlans(), incomingBytes: bytes })
    const fits = plan.fits && (plan.evict.length === 0 || (this.lruEnabled && !kept))
    if (!fits) {
      // Said where an admin looks once a minute: a cache.min_free_gb larger than the disk holds says it
      // at every request otherwise.
      this.noRoom.say(this.host.logger, { bytes, free, minFree: this.budget.minFreeBytes, used: this.host.usedBytes(), reserved: this.reservedBytes, partial: this.host.idlePartialBytes(), max: this.budget.maxBytes }, 'no room in the cache (cache.max_size_gb, less what downloads under way reserved, and cache.min_free_gb); passing the file through uncached', true)
      return false
    }
    this.reservedBytes += bytes
    if (written !== undefined) this.reservations.set(written, bytes)
    return true
  }

  /**
   * The disk's free bytes less what reservations will still write: downloads starting together each
   * saw the space the others had reserved as free (their temp files fill as they go), and together
   * took the disk below cache.min_free_gb, then to full.
   */
  private async freeForPlans (): Promise<number> {
    let unwritten = 0
    for (const [written, bytes] of this.reservations) unwritten += Math.max(0, bytes - written())
    return await this.host.freeBytes() - unwritten
  }

  /** Bytes the budget counts: blobs, what downloads under way reserved, and stopped partial downloads. */
  private spentBytes (): number {
    return this.host.usedBytes() + this.reservedBytes + this.host.idlePartialBytes()
  }
}
