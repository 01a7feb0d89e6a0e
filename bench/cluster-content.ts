import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

/** Content is made of 64 KiB units; a write is at most one unit. */
export const UNIT = 64 * 1024
const STAMP = 12

/**
 * Deterministic blob content generated on the fly (no big files on disk): a pseudo-random 64 KiB base
 * per seed, each unit stamped with its index and the seed so no two units of a blob or two blobs are
 * alike. Cheap to produce at several hundred MB/s, so the upstream is never the bottleneck.
 */
export class BlobContent {
  readonly size: number
  readonly seed: number
  readonly #base: Buffer

  constructor (size: number, seed: number) {
    this.size = size
    this.seed = seed
    this.#base = Buffer.allocUnsafe(UNIT)
    let x = (seed * 2654435761 + 1) >>> 0 || 1
    for (let i = 0; i < UNIT; i += 4) {
      // xorshift32
      x ^= x << 13; x >>>= 0
      x ^= x >>> 17
      x ^= x << 5; x >>>= 0
      this.#base.writeUInt32LE(x, i)
    }
  }

  /**
   * Bytes [start, end] (inclusive), one unit at a time, as the unit's stamp (its index and the seed,
   * 12 fresh bytes) and a slice of the shared base: nothing is copied, so generating costs ~nothing.
   */
  * units (start: number, end: number): Generator<Buffer[]> {
    let off = start
    while (off <= end) {
      const unit = Math.floor(off / UNIT)
      const unitStart = unit * UNIT
      const last = Math.min(end, unitStart + UNIT - 1, this.size - 1)
      const stamp = Buffer.allocUnsafe(STAMP)
      stamp.writeUInt32LE(unit >>> 0, 0)
      stamp.writeUInt32LE(Math.floor(unit / 2 ** 32), 4)
      stamp.writeUInt32LE(this.seed >>> 0, 8)
      const from = off - unitStart
      const to = last - unitStart + 1
      const parts: Buffer[] = []
      if (from < STAMP) parts.push(stamp.subarray(from, Math.min(STAMP, to)))
      if (to > STAMP) parts.push(this.#base.subarray(Math.max(from, STAMP), to))
      yield parts
      off = last + 1
    }
  }

  sha256 (): string {
    const hash = createHash('sha256')
    if (this.size > 0) for (const parts of this.units(0, this.size - 1)) for (const p of parts) hash.update(p)
    return hash.digest('hex')
  }
}

/**
 * A byte-rate limiter in virtual-time form (GCRA): reserving n bytes moves the bucket's theoretical
 * arrival time forward by n / rate; the caller sends once that time is reached. The schedule is
 * absolute, so timer lateness does not accumulate (up to 25 ms of lag is caught up).
 */
export class RateLimit {
  readonly rate: number
  #tat = performance.now()

  constructor (rate: number) {
    this.rate = rate
  }

  reserve (n: number): number {
    if (!(this.rate > 0)) return 0
    const now = performance.now()
    this.#tat = Math.max(this.#tat, now - 25) + (n * 1000) / this.rate
    return this.#tat - now
  }
}

/** Waits until every limit lets n bytes through. */
export async function pace (limits: readonly RateLimit[], n: number, signal: AbortSignal): Promise<void> {
  for (const l of limits) {
    const wait = l.reserve(n)
    if (wait >= 1) await sleep(wait, undefined, { signal })
  }
}
