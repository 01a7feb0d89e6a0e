import type { Source, SourceFetchOptions, SourceResponse } from '../fetch/upstream-source.ts'
import { SHARE_UNIT } from './ownership.ts'

/**
 * For this long after a download starts, its upstream requests are cut to STEP bytes: members asked
 * "at the same moment" start up to a few hundred ms apart and answer only once their download exists,
 * so the first ranges are picked before the split is known. Short steps let the rest of each range be
 * routed again with a fresher view (a shorter 206 is asked again at once) instead of every connection
 * committing a whole piece to the upstream.
 */
export const YOUNG_MS = 2000
const STEP = 1 << 20
/** The first range from the upstream (it only has to start the download and learn the blob's size). */
const FIRST_STEP = 64 << 10

/** What the swarm knows when a range goes upstream. */
export interface UpstreamAsk {
  /** No response yet: this range starts the download. */
  first: boolean
  /** The download is young, or members were lost just now. */
  settling: boolean
  /** Other members download the blob too. */
  shared: boolean
}

/**
 * A swarm download's ranges that go to the upstream: cut short while the split between members is not
 * known yet, kept within one unit while others share the blob, and listed while they are fetched (what
 * other downloaders may read along).
 */
export class UpstreamSteps {
  private readonly upstream: Source
  private readonly active = new Set<{ start: number, end: number }>()

  constructor (upstream: Source) {
    this.upstream = upstream
  }

  async fetch (range: { start: number, end: number } | null, ask: UpstreamAsk, options: SourceFetchOptions): Promise<SourceResponse> {
    // The first range is shortest: every member asked at the same moment takes it from the upstream
    // before any of them knows the others (with 1 MiB, 5 nodes on a 4 MiB blob fetched it twice over).
    // Also just after members were lost (a node back from a freeze sees every other leave, then rejoin
    // a second later): short steps leave the rest to be routed to them again.
    const step = ask.first ? FIRST_STEP : STEP
    if (range !== null && ask.settling && range.end - range.start + 1 > step) {
      range = { start: range.start, end: range.start + step - 1 }
    }
    // A piece of the rule's own chunk_size (5 or 10 MiB in the seed's config) may run into the next
    // unit, which another downloader fetches: stop at this unit's end and let the rest be routed again.
    if (range !== null && ask.shared) {
      const unitEnd = (Math.floor(range.start / SHARE_UNIT) + 1) * SHARE_UNIT - 1
      if (range.end > unitEnd) range = { start: range.start, end: unitEnd }
    }
    const res = await this.upstream.fetch(range, options)
    if (res.status === 206 && res.contentRange !== null) {
      const r = { start: res.contentRange.start, end: res.contentRange.end + 1 }
      this.active.add(r)
      res.body.once('close', () => { this.active.delete(r) })
    }
    return res
  }

  /** Ranges [start, end) being fetched from the upstream right now. */
  reads (): Array<[number, number]> {
    return [...this.active].slice(0, 1024).map(r => [r.start, r.end])
  }

  /** Whether the byte at `offset` is in a range being fetched from the upstream right now. */
  fetching (offset: number): boolean {
    for (const r of this.active) if (r.start <= offset && offset < r.end) return true
    return false
  }
}
