import type { ByteRanges } from './byte-ranges.ts'
import { judgedAt, marginOf, MIN_STEAL, minPartOf, stealable, worthStealing } from './steal-policy.ts'

/**
 * Piece plan and scheduler for one blob's download. Pure: no I/O, no timers. The download asks
 * `next()` whenever a connection is free and reports progress by moving `Assignment.pos` and by
 * adding written bytes to the shared ByteRanges.
 */

export const MIN_AUTO_PIECE = 1 << 20
/**
 * Auto pieces stay small so pieces complete roughly in file order: readers stream at the aggregate
 * rate instead of one connection's, the in-order hash keeps up, and a crash loses little.
 */
export const MAX_AUTO_PIECE = 4 << 20

/**
 * The auto piece size for an upstream whose first response took `latencyMs`. The bytes landed out of
 * order (about connections × piece size) are what a reader and the in-order hash still have to read
 * when the last byte lands: at 64 connections 4 MiB pieces left 256 MiB, half a second of a 1 GiB cold
 * download on a busy node, and 1 MiB pieces measured 7 % faster. But each piece costs its connection
 * one request's wait: pieces grow with the latency so that wait stays a small part of a piece (at
 * 4 MB/s per connection 1 MiB takes 260 ms). The first response's latency includes a connection's
 * setup (TCP, TLS: two or three round trips), so it over-states a later request's by as much.
 */
export function autoPieceFor (latencyMs: number | undefined): number {
  if (latencyMs === undefined || latencyMs <= 50) return MIN_AUTO_PIECE
  if (latencyMs <= 100) return 2 * MIN_AUTO_PIECE
  return MAX_AUTO_PIECE
}
/** A reader is "being served" when a connection will reach its offset within this many bytes. */
export const NEAR_BYTES = 1 << 20

export interface PiecePlan {
  readonly size: number
  readonly pieceSize: number
  readonly count: number
}

/** chunkSize <= 0 means size / concurrency, kept within [1 MiB, `maxAuto`]. */
export function planPieces (size: number, chunkSize: number, concurrency: number, maxAuto = MAX_AUTO_PIECE): PiecePlan {
  let pieceSize = chunkSize > 0
    ? chunkSize
    : Math.min(Math.max(MIN_AUTO_PIECE, maxAuto), Math.max(MIN_AUTO_PIECE, Math.ceil(size / Math.max(1, concurrency))))
  pieceSize = Math.max(1, Math.floor(pieceSize))
  return { size, pieceSize, count: size === 0 ? 0 : Math.ceil(size / pieceSize) }
}

export function pieceRange (plan: PiecePlan, i: number): [number, number] {
  const start = i * plan.pieceSize
  return [start, Math.min(plan.size, start + plan.pieceSize)]
}

/** Pieces overlapping [start, end) that `written` now fully covers. */
export function piecesCoveredIn (plan: PiecePlan, written: ByteRanges, start: number, end: number): number[] {
  const out: number[] = []
  if (plan.count === 0 || end <= start) return out
  const first = Math.floor(start / plan.pieceSize)
  const last = Math.min(plan.count - 1, Math.floor((end - 1) / plan.pieceSize))
  for (let i = first; i <= last; i++) {
    const [s, e] = pieceRange(plan, i)
    if (written.covers(s, e)) out.push(i)
  }
  return out
}

export interface Assignment {
  readonly id: number
  readonly start: number
  /** Next byte this connection will write. */
  pos: number
  /** Exclusive end; may shrink when another connection steals the tail. */
  end: number
  readonly duplicate: boolean
  duplicated: boolean
  /** Time of the last byte written (ms); a duplicate is only worth it for a stalled connection. */
  lastProgress: number
  /** When it was handed out (ms; 0: unknown), for its rate. */
  readonly startedAt: number
  /** A stalled range and its duplicate race for the same bytes: the first to land one stops the other. */
  twin?: Assignment | null
  /** Its bytes come from a peer's download in flight (see SourceResponse.readAlong). */
  readAlong?: boolean
}

/**
 * `a` just wrote bytes: if it races a twin for the same tail, the twin stops where it is (its end drops to
 * its position). Without that both fetched the whole tail once the stalled one came back to life: about 3 %
 * of the upstream bytes of the 4-node shared download, where a few of ~350 upstream connections stall.
 */
export function raceWon (a: Assignment): void {
  const twin = a.twin
  if (twin === undefined || twin === null) return
  twin.end = Math.min(twin.end, twin.pos)
  twin.twin = null
  a.twin = null
}

export class Scheduler {
  readonly plan: PiecePlan
  private readonly written: ByteRanges
  private readonly active = new Set<Assignment>()
  private nextId = 1

  /** Connections expected to share the work; near the end assignments shrink so they finish together. */
  private readonly connections: number

  /** The boundaries new ranges cut at an offset keep to where they can (see Source.alignment). */
  private readonly alignment: (offset: number) => number

  /** How long a new request takes to bring its first byte (the first response's wait), ms. */
  private readonly requestMs: number

  constructor (plan: PiecePlan, written: ByteRanges, connections = 1, alignment: (offset: number) => number = () => 1, requestMs = 0) {
    this.plan = plan
    this.written = written
    this.connections = Math.max(1, connections)
    this.alignment = alignment
    this.requestMs = requestMs
  }

  get activeCount (): number {
    return this.active.size
  }

  /** Registers a range that is already being fetched (the first response), since `now` (ms). */
  claim (start: number, end: number, now = 0): Assignment {
    return this.add(start, end, false, now)
  }

  release (a: Assignment): void {
    this.active.delete(a)
  }

  /** True when no byte is missing. */
  get complete (): boolean {
    return this.written.covers(0, this.plan.size)
  }

  /**
   * Work for a free connection: a waiting reader's offset no connection will reach soon first, then
   * half of the slow range a waiting client's bytes come from, then the first free range in file order,
   * then half of the largest active range (work stealing), then a duplicate of the slowest tail
   * (endgame). Null when there is nothing useful left to do.
   */
  next (wanted: readonly number[] = [], now = 0, stallMs = Number.POSITIVE_INFINITY, patient: readonly number[] = []): Assignment | null {
    const free = this.freeRanges()
    const urgent = this.urgentOffset(wanted, patient)
    if (urgent !== null) {
      const a = this.takeAt(urgent, free, now)
      if (a !== null) return a
    }
    // A reader waiting behind a slow connection is helped before ranges further on are started: they
    // would be fetched anyway, and the reader meanwhile gets its bytes at one connection's rate.
    const front = this.stealAhead(wanted, now)
    if (front !== null) return front
    const first = free[0]
    if (first !== undefined) return this.add(first[0], this.freeEnd(first[0], first[1], free), false, now)
    const stolen = this.steal(now)
    if (stolen !== null) return stolen
    return this.duplicateTail(now, stallMs)
  }

  /**
   * Whether some active range has made no progress for stallMs and could use a duplicate, and whether
   * one of those is its own (not a peer's download read along, which goes at that download's pace).
   */
  stalled (now: number, stallMs: number): { any: boolean, own: boolean } {
    const out = { any: false, own: false }
    for (const a of this.active) {
      if (a.duplicate || a.duplicated || a.end <= a.pos || now - a.lastProgress < stallMs) continue
      out.any = true
      if (a.readAlong !== true) out.own = true
    }
    return out
  }

  /** When the connection on its way to `offset` last landed bytes (ms), or 0 when none is. */
  progressTowards (offset: number): number {
    let at = 0
    for (const a of this.active) {
      if (a.pos <= offset && offset < a.end && a.lastProgress > at) at = a.lastProgress
    }
    return at
  }

  /**
   * The lowest offset a reader waits for that no connection will reach soon, if any. A `patient` offset
   * (a peer reading along) is served by any connection on its way there: cutting that connection's range
   * would fetch again what the upstream already sent into its socket buffers, megabytes on a busy node.
   */
  urgentOffset (wanted: readonly number[], patient: readonly number[] = []): number | null {
    let best: number | null = null
    const consider = (w: number, near: number): void => {
      if (w >= this.plan.size || this.written.covers(w, w + 1)) return
      for (const a of this.active) {
        if (a.pos <= w && w < a.end && w - a.pos < near) return
      }
      if (best === null || w < best) best = w
    }
    for (const w of wanted) consider(w, NEAR_BYTES)
    for (const w of patient) consider(w, Number.POSITIVE_INFINITY)
    return best
  }

  /**
   * When a range now too young to be judged may be robbed of its tail (ms), or null when none is: a
   * connection that found no work may ask again then instead of leaving.
   */
  stealableAt (now: number): number | null {
    let at: number | null = null
    for (const a of this.active) {
      const t = judgedAt(a, now)
      if (t === null) continue
      if (at === null || t < at) at = t
    }
    return at
  }

  /**
   * Where a new range from `start` in the free range [start, end) ends: the connections' share of what
   * is free (a reader's offset in a large free range must not take it all onto one connection), within
   * the piece, on a boundary of the source's units.
   */
  private freeEnd (start: number, end: number, free: ReadonlyArray<readonly [number, number]>): number {
    let total = 0
    for (const [s, e] of free) total += e - s
    const len = Math.max(MIN_STEAL, Math.ceil(total / this.connections))
    const unit = Math.max(1, this.alignment(start))
    // A piece end inside one of the source's units (pieces of size/concurrency) would have this range
    // and the next one each ask for that whole unit: the range goes on to the unit's end.
    const pieceEnd = Math.ceil(this.pieceEnd(start) / unit) * unit
    return Math.min(end, pieceEnd, Math.ceil((start + len) / unit) * unit)
  }

  private takeAt (w: number, free: Array<[number, number]>, now: number): Assignment | null {
    for (const [s, e] of free) {
      if (s <= w && w < e) return this.add(w, this.freeEnd(w, e, free), false, now)
    }
    for (const a of this.active) {
      if (a.pos <= w && w < a.end) {
        const end = a.end
        a.end = w
        return this.add(w, end, false, now)
      }
    }
    return null
  }

  private steal (now: number): Assignment | null {
    let victim: Assignment | null = null
    for (const a of this.active) {
      if (!stealable(a, now) || !worthStealing(a, now, this.requestMs)) continue
      if (victim === null || a.end - a.pos > victim.end - victim.pos) victim = a
    }
    return victim === null ? null : this.cut(victim, now)
  }

  /** The tail of the range the lowest waiting client reader gets its bytes from, when worth cutting. */
  private stealAhead (wanted: readonly number[], now: number): Assignment | null {
    let w = Number.POSITIVE_INFINITY
    for (const o of wanted) if (o < w) w = o
    for (const a of this.active) {
      if (a.pos <= w && w < a.end) return stealable(a, now) && worthStealing(a, now, this.requestMs) ? this.cut(a, now) : null
    }
    return null
  }

  /** Half of `victim`'s remaining bytes past its margin, to a new assignment (null when too small). */
  private cut (victim: Assignment, now: number): Assignment | null {
    const margin = marginOf(victim, now)
    const mid = victim.end - Math.floor((victim.end - victim.pos - margin) / 2 / 65536) * 65536
    const unit = Math.max(65536, this.alignment(mid))
    // On a boundary of the source's units when one lies in the stolen half, else not at all.
    const cut = unit === 65536 ? mid : Math.ceil(mid / unit) * unit
    const part = minPartOf(victim, now)
    if (cut - victim.pos < part + margin || victim.end - cut < part) return null
    const end = victim.end
    victim.end = cut
    return this.add(cut, end, false, now)
  }

  private duplicateTail (now: number, stallMs: number): Assignment | null {
    let victim: Assignment | null = null
    for (const a of this.active) {
      if (a.duplicate || a.duplicated || a.end <= a.pos || now - a.lastProgress < stallMs) continue
      if (victim === null || a.end - a.pos > victim.end - victim.pos) victim = a
    }
    if (victim === null) return null
    victim.duplicated = true
    const d = this.add(victim.pos, victim.end, true, now)
    d.twin = victim
    victim.twin = d
    return d
  }

  private add (start: number, end: number, duplicate: boolean, now = 0): Assignment {
    const a: Assignment = { id: this.nextId++, start, pos: start, end, duplicate, duplicated: false, lastProgress: now, startedAt: now }
    this.active.add(a)
    return a
  }

  private pieceEnd (offset: number): number {
    return Math.min(this.plan.size, (Math.floor(offset / this.plan.pieceSize) + 1) * this.plan.pieceSize)
  }

  /** Missing bytes that no active connection is responsible for, in file order. */
  private freeRanges (): Array<[number, number]> {
    const busy: Array<[number, number]> = []
    for (const a of this.active) if (a.end > a.pos) busy.push([a.pos, a.end])
    return uncovered(this.written.gaps(0, this.plan.size), busy)
  }
}

/**
 * The parts of `ranges` (sorted, disjoint [start, end) pairs) that no interval of `busy` (any order,
 * may overlap) covers, in order. Linear after sorting `busy`: the scheduler asks for every connection
 * that needs work, with up to a few hundred ranges on each side.
 */
export function uncovered (ranges: ReadonlyArray<readonly [number, number]>, busy: Array<[number, number]>): Array<[number, number]> {
  if (busy.length === 0) return ranges.map(([s, e]) => [s, e])
  busy.sort((x, y) => x[0] - y[0])
  // The union of `busy` as sorted disjoint intervals.
  const merged: Array<[number, number]> = []
  for (const [s, e] of busy) {
    const last = merged[merged.length - 1]
    if (last !== undefined && s <= last[1]) { if (e > last[1]) last[1] = e } else merged.push([s, e])
  }
  const free: Array<[number, number]> = []
  let j = 0
  for (const [rs, re] of ranges) {
    let s = rs
    while (j < merged.length && (merged[j] as [number, number])[1] <= s) j++
    for (let k = j; s < re; k++) {
      const b = merged[k]
      if (b === undefined || b[0] >= re) { free.push([s, re]); break }
      if (b[0] > s) free.push([s, b[0]])
      if (b[1] >= re) break
      s = b[1]
    }
  }
  return free
}
