import type { ByteRanges } from './byte-ranges.ts'

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
/**
 * An assignment smaller than twice this is not split for work stealing; on a connection whose rate is
 * known, twice what it brings in a second (at least 64 KiB): a request is worth a second of a slow one.
 */
export const MIN_STEAL = 256 << 10
const MIN_STEAL_MS = 1000
const MIN_STEAL_FLOOR = 64 << 10
/**
 * A connection robbed of its tail keeps this much past its position: bytes the upstream may already have
 * sent, waiting in the socket buffers of a busy node, which the thief would fetch again.
 */
export const STEAL_MARGIN = 1 << 20
/**
 * A connection whose rate is known keeps what it brings in this long instead (at least 64 KiB): a slow
 * one has little in its socket buffers, and a megabyte at 200 KB/s would hold the file back 5 s.
 */
export const STEAL_MARGIN_MS = 250
const MIN_STEAL_MARGIN = 64 << 10
/**
 * A range younger than this has not shown its rate yet: it is not robbed of its tail until it has. The
 * first response of a small file from a fast upstream is often on its way whole by then, and a cut
 * makes the upstream's bytes already sent past it count twice.
 */
export const STEAL_PROBE_MS = 50
/**
 * A range that will finish within this long (or twice a request's wait, if longer) at its rate so far
 * keeps its tail: a new request's answer would come hardly sooner, and the bytes already sent past the
 * cut are fetched again.
 */
export const STEAL_WORTH_MS = 100
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

  /** The boundaries new ranges keep to where they can (see Source.alignment). */
  private readonly alignment: () => number

  /** How long a new request takes to bring its first byte (the first response's wait), ms. */
  private readonly requestMs: number

  constructor (plan: PiecePlan, written: ByteRanges, connections = 1, alignment: () => number = () => 1, requestMs = 0) {
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
   * Work for a free connection: a waiting reader's offset first, then the first free range in file
   * order, then half of the largest active range (work stealing), then a duplicate of the slowest
   * tail (endgame). Null when there is nothing useful left to do.
   */
  next (wanted: readonly number[] = [], now = 0, stallMs = Number.POSITIVE_INFINITY, patient: readonly number[] = []): Assignment | null {
    const free = this.freeRanges()
    const urgent = this.urgentOffset(wanted, patient)
    if (urgent !== null) {
      const a = this.takeAt(urgent, free, now)
      if (a !== null) return a
    }
    const first = free[0]
    if (first !== undefined) {
      let total = 0
      for (const [s, e] of free) total += e - s
      const len = Math.max(MIN_STEAL, Math.ceil(total / this.connections))
      const unit = Math.max(1, this.alignment())
      return this.add(first[0], Math.min(first[1], this.pieceEnd(first[0]), Math.ceil((first[0] + len) / unit) * unit), false, now)
    }
    const stolen = this.steal(now)
    if (stolen !== null) return stolen
    return this.duplicateTail(now, stallMs)
  }

  /** True when some active range has made no progress for stallMs and could use a duplicate. */
  hasStalled (now: number, stallMs: number): boolean {
    for (const a of this.active) {
      if (!a.duplicate && !a.duplicated && a.end > a.pos && now - a.lastProgress >= stallMs) return true
    }
    return false
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
      // Its margin is known only with its rate: the smallest one says whether it may be split then.
      if (a.duplicate || a.duplicated || a.end - a.pos < 2 * MIN_STEAL_FLOOR + MIN_STEAL_MARGIN) continue
      if (a.startedAt <= 0 || now - a.startedAt >= STEAL_PROBE_MS) continue
      const t = a.startedAt + STEAL_PROBE_MS
      if (at === null || t < at) at = t
    }
    return at
  }

  private takeAt (w: number, free: Array<[number, number]>, now: number): Assignment | null {
    for (const [s, e] of free) {
      if (s <= w && w < e) return this.add(w, Math.min(e, this.pieceEnd(w)), false, now)
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

  /** Whether `a` is long enough to be split at all. */
  private stealable (a: Assignment, now: number): boolean {
    return !a.duplicate && !a.duplicated && a.end - a.pos >= 2 * this.minPartOf(a, now) + this.marginOf(a, now)
  }

  /** `a`'s rate so far, bytes per ms, or null when not known yet. */
  private rateOf (a: Assignment, now: number): number | null {
    const elapsed = now - a.startedAt
    const done = a.pos - a.start
    return now <= 0 || a.startedAt <= 0 || elapsed <= 0 || done <= 0 ? null : done / elapsed
  }

  /** The smallest part of `a` a steal leaves or takes (see MIN_STEAL), in 64 KiB steps. */
  private minPartOf (a: Assignment, now: number): number {
    const rate = this.rateOf(a, now)
    if (rate === null) return MIN_STEAL
    return Math.min(MIN_STEAL, Math.max(MIN_STEAL_FLOOR, Math.ceil(rate * MIN_STEAL_MS / 65536) * 65536))
  }

  /** What `a` keeps past its position when robbed (see STEAL_MARGIN, STEAL_MARGIN_MS), in 64 KiB steps. */
  private marginOf (a: Assignment, now: number): number {
    const rate = this.rateOf(a, now)
    if (rate === null) return STEAL_MARGIN
    const margin = Math.ceil(rate * STEAL_MARGIN_MS / 65536) * 65536
    return Math.min(STEAL_MARGIN, Math.max(MIN_STEAL_MARGIN, margin))
  }

  /**
   * Whether cutting `a`'s tail would pay: its rate so far says it needs longer than a new request's
   * answer would take. Unknown times (0) leave it to the size rule alone.
   */
  private worthStealing (a: Assignment, now: number): boolean {
    if (now <= 0 || a.startedAt <= 0) return true
    const elapsed = now - a.startedAt
    if (elapsed < STEAL_PROBE_MS) return false
    const done = a.pos - a.start
    if (done <= 0) return true
    return (a.end - a.pos) * elapsed / done > Math.max(STEAL_WORTH_MS, 2 * this.requestMs)
  }

  private steal (now: number): Assignment | null {
    let victim: Assignment | null = null
    for (const a of this.active) {
      if (!this.stealable(a, now) || !this.worthStealing(a, now)) continue
      if (victim === null || a.end - a.pos > victim.end - victim.pos) victim = a
    }
    if (victim === null) return null
    const margin = this.marginOf(victim, now)
    const unit = Math.max(65536, this.alignment())
    const mid = victim.end - Math.floor((victim.end - victim.pos - margin) / 2 / 65536) * 65536
    // On a boundary of the source's units when one lies in the stolen half, else not at all.
    const cut = unit === 65536 ? mid : Math.ceil(mid / unit) * unit
    const part = this.minPartOf(victim, now)
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
