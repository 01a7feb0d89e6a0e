import type { Assignment } from './pieces.ts'

/**
 * When work stealing may cut a range, and where: judged by the range's rate so far. Pure functions of
 * an assignment and the time (ms; 0 or an unknown start leaves a range to the size rules alone).
 */

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

/** `a`'s rate so far, bytes per ms, or null when not known yet. */
function rateOf (a: Assignment, now: number): number | null {
  const elapsed = now - a.startedAt
  const done = a.pos - a.start
  return now <= 0 || a.startedAt <= 0 || elapsed <= 0 || done <= 0 ? null : done / elapsed
}

/** A rate's bytes over `ms`, in 64 KiB steps within [floor, cap]. */
function bytesIn (rate: number, ms: number, floor: number, cap: number): number {
  return Math.min(cap, Math.max(floor, Math.ceil(rate * ms / 65536) * 65536))
}

/** The smallest part of `a` a steal leaves or takes (see MIN_STEAL). */
export function minPartOf (a: Assignment, now: number): number {
  const rate = rateOf(a, now)
  return rate === null ? MIN_STEAL : bytesIn(rate, MIN_STEAL_MS, MIN_STEAL_FLOOR, MIN_STEAL)
}

/** What `a` keeps past its position when robbed (see STEAL_MARGIN, STEAL_MARGIN_MS). */
export function marginOf (a: Assignment, now: number): number {
  const rate = rateOf(a, now)
  return rate === null ? STEAL_MARGIN : bytesIn(rate, STEAL_MARGIN_MS, MIN_STEAL_MARGIN, STEAL_MARGIN)
}

/** Whether `a` is long enough to be split at all. */
export function stealable (a: Assignment, now: number): boolean {
  return !a.duplicate && !a.duplicated && a.end - a.pos >= 2 * minPartOf(a, now) + marginOf(a, now)
}

/**
 * Whether cutting `a`'s tail would pay: its rate so far says it needs longer than a new request's
 * answer would take (`requestMs`: the first response's wait).
 */
export function worthStealing (a: Assignment, now: number, requestMs: number): boolean {
  if (now <= 0 || a.startedAt <= 0) return true
  const elapsed = now - a.startedAt
  if (elapsed < STEAL_PROBE_MS) return false
  const done = a.pos - a.start
  if (done <= 0) return true
  return (a.end - a.pos) * elapsed / done > Math.max(STEAL_WORTH_MS, 2 * requestMs)
}

/**
 * When `a`, too young to be judged now, will have shown its rate (ms), or null when it already has or
 * could not be split even with the smallest margin and parts.
 */
export function judgedAt (a: Assignment, now: number): number | null {
  if (a.duplicate || a.duplicated || a.end - a.pos < 2 * MIN_STEAL_FLOOR + MIN_STEAL_MARGIN) return null
  if (a.startedAt <= 0 || now - a.startedAt >= STEAL_PROBE_MS) return null
  return a.startedAt + STEAL_PROBE_MS
}
