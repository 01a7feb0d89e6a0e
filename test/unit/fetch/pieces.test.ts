import { describe, expect, it } from 'vitest'
import { ByteRanges } from '../../../node/fetch/byte-ranges.ts'
import { autoPieceFor, Scheduler, planPieces, piecesCoveredIn, raceWon, uncovered } from '../../../node/fetch/pieces.ts'
import { MIN_STEAL, STEAL_MARGIN, STEAL_PROBE_MS } from '../../../node/fetch/steal-policy.ts'
import type { Assignment } from '../../../node/fetch/pieces.ts'

const MiB = 1 << 20

describe('ByteRanges', () => {
  it('merges, covers and reports gaps', () => {
    const r = new ByteRanges()
    r.add(10, 20)
    r.add(30, 40)
    expect(r.covers(10, 20)).toBe(true)
    expect(r.covers(15, 35)).toBe(false)
    expect(r.contiguousEnd(12)).toBe(20)
    expect(r.contiguousEnd(25)).toBe(25)
    expect(r.gaps(0, 50)).toEqual([[0, 10], [20, 30], [40, 50]])
    r.add(20, 30)
    expect(r.intervals).toBe(1)
    expect(r.covers(10, 40)).toBe(true)
    r.add(0, 5)
    r.add(5, 10)
    expect(r.contiguousEnd(0)).toBe(40)
    expect(r.total()).toBe(40)
  })

  it('removes a span from its intervals', () => {
    const r = new ByteRanges()
    r.add(0, 100)
    r.add(200, 300)
    r.remove(50, 250)
    expect(r.list()).toEqual([[0, 50], [250, 300]])
    r.remove(0, 10)
    r.remove(290, 400)
    expect(r.list()).toEqual([[10, 50], [250, 290]])
    r.clear()
    expect(r.total()).toBe(0)
  })

  it('lists its intervals in order, the first ones when capped', () => {
    const r = new ByteRanges()
    r.add(50, 60)
    r.add(0, 10)
    r.add(20, 30)
    expect(r.list()).toEqual([[0, 10], [20, 30], [50, 60]])
    expect(r.list(2)).toEqual([[0, 10], [20, 30]])
  })
})

describe('planPieces', () => {
  it('uses chunk_size, or size/concurrency within bounds', () => {
    expect(planPieces(100 * MiB, 10 * MiB, 4)).toMatchObject({ pieceSize: 10 * MiB, count: 10 })
    // Auto: size / concurrency within [1 MiB, the largest auto piece asked for (4 MiB by default)].
    expect(planPieces(1024 * MiB, 0, 64).pieceSize).toBe(4 * MiB)
    expect(planPieces(1024 * MiB, 0, 64, MiB).pieceSize).toBe(MiB)
    expect(planPieces(1024 * MiB, 0, 512, 4 * MiB).pieceSize).toBe(2 * MiB)
    expect(planPieces(1024 * MiB, 8 * MiB, 64, MiB).pieceSize).toBe(8 * MiB)
    expect(planPieces(8 * MiB, 0, 64).pieceSize).toBe(MiB)
    expect(planPieces(0, 0, 4).count).toBe(0)
  })
  it('grows auto pieces with the upstream\'s latency', () => {
    expect(autoPieceFor(undefined)).toBe(MiB)
    expect(autoPieceFor(21)).toBe(MiB)
    expect(autoPieceFor(45)).toBe(MiB)
    expect(autoPieceFor(80)).toBe(2 * MiB)
    expect(autoPieceFor(150)).toBe(4 * MiB)
  })
  it('reports pieces completed by a write', () => {
    const plan = planPieces(10, 4, 1)
    const w = new ByteRanges()
    w.add(0, 6)
    expect(piecesCoveredIn(plan, w, 0, 6)).toEqual([0])
    w.add(6, 10)
    expect(piecesCoveredIn(plan, w, 6, 10)).toEqual([1, 2])
  })
})

describe('uncovered', () => {
  /** One busy interval at a time, as plainly as it can be said. */
  function reference (ranges: Array<[number, number]>, busy: Array<[number, number]>): Array<[number, number]> {
    let free = ranges
    for (const [p, e] of busy) {
      const next: Array<[number, number]> = []
      for (const [s, t] of free) {
        if (t <= p || s >= e) { next.push([s, t]); continue }
        if (s < p) next.push([s, p])
        if (t > e) next.push([e, t])
      }
      free = next
    }
    return free
  }

  it('leaves the parts of the ranges no busy interval covers, in order, for any overlap of busy intervals', () => {
    let seed = 7
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    for (let round = 0; round < 500; round++) {
      const ranges: Array<[number, number]> = []
      for (let at = rand(20); at < 1000; at += 1 + rand(80)) {
        const end = at + 1 + rand(60)
        ranges.push([at, Math.min(end, 1000)])
        at = end
      }
      const busy: Array<[number, number]> = []
      for (let i = rand(12); i > 0; i--) {
        const s = rand(1000)
        busy.push([s, s + 1 + rand(150)])
      }
      const want = reference(ranges, busy.map(([s, e]) => [s, e]))
      expect(uncovered(ranges, busy)).toEqual(want)
    }
    expect(uncovered([[0, 10], [20, 30]], [[5, 25], [22, 24], [0, 1]])).toEqual([[1, 5], [25, 30]])
    expect(uncovered([[0, 10]], [])).toEqual([[0, 10]])
  })
})

/** A scheduler whose first range, [0, end), was claimed at `t` and has brought `pos` bytes. */
function claimedAt (size: number, piece: number, connections: number, end: number, pos: number, t: number): { s: Scheduler, a: Assignment } {
  const written = new ByteRanges()
  const s = new Scheduler(planPieces(size, piece, connections), written, connections)
  const a = s.claim(0, end, t)
  a.pos = pos
  written.add(0, pos)
  return { s, a }
}

describe('Scheduler', () => {
  it('hands out pieces in file order, skipping what is written', () => {
    const w = new ByteRanges()
    w.add(0, 4 * MiB)
    const s = new Scheduler(planPieces(16 * MiB, 4 * MiB, 2), w, 1)
    const a = s.next()
    expect([a?.start, a?.end]).toEqual([4 * MiB, 8 * MiB])
    const b = s.next()
    expect(b?.start).toBe(8 * MiB)
  })
  it('serves a waiting reader first', () => {
    const s = new Scheduler(planPieces(16 * MiB, 4 * MiB, 4), new ByteRanges(), 4)
    const a = s.next([9 * MiB + 5])
    expect([a?.start, a?.end]).toEqual([9 * MiB + 5, 12 * MiB])
    const b = s.next()
    expect(b?.start).toBe(0)
  })
  it('gives a reader\'s offset in a large free range the connections\' share of it, not the whole piece', () => {
    // Peers reading along ask for a few offsets of a unit: each taken to the piece's end (4 MiB, cut to
    // 1 MiB steps while a shared download is young) put a slow upstream's unit on 3 connections.
    const s = new Scheduler(planPieces(16 * MiB, 8 * MiB, 2), new ByteRanges(), 16)
    const a = s.next([5 * MiB])
    expect([a?.start, a?.end]).toEqual([5 * MiB, 6 * MiB])
  })
  it('keeps to a source\'s units only where it asks to, offset by offset', () => {
    // Units up to 4 MiB (read from peers), none past it (fetched from the upstream by this node).
    const s = new Scheduler(planPieces(8 * MiB, 8 * MiB, 1), new ByteRanges(), 16, offset => offset < 4 * MiB ? MiB : 1)
    const got: Array<[number, number]> = []
    for (let a = s.next(); a !== null && a.start < 5 * MiB; a = s.next()) got.push([a.start, a.end])
    expect(got.slice(0, 5)).toEqual([[0, MiB], [MiB, 2 * MiB], [2 * MiB, 3 * MiB], [3 * MiB, 4 * MiB], [4 * MiB, 4 * MiB + (256 << 10)]])
  })
  it('steals half of the largest active range when nothing is free, past a margin its connection keeps', () => {
    const s = new Scheduler(planPieces(8 * MiB, 8 * MiB, 1), new ByteRanges(), 1)
    const a = s.next()
    expect([a?.start, a?.end]).toEqual([0, 8 * MiB])
    const b = s.next()
    expect(b?.start).toBe(STEAL_MARGIN + (8 * MiB - STEAL_MARGIN) / 2)
    expect(a?.end).toBe(b?.start)
    expect(b?.end).toBe(8 * MiB)
  })
  it('splits the slow range a client waits on before starting ranges further on', () => {
    // Many connections sharing one aggregate limit each bring little: the client's next bytes came at
    // one connection's rate while free connections started ranges ahead of it (3 MB of 200 in 3 s).
    const T = 1_000_000
    const { s, a: front } = claimedAt(64 * MiB, 4 * MiB, 16, 4 * MiB, 128 << 10, T)
    const helper = s.next([128 << 10], T + 500)
    expect(helper?.start).toBeGreaterThan(front.pos)
    expect(helper?.end).toBe(4 * MiB)
    expect(front.end).toBe(helper?.start)
    // With no client waiting, the next free range comes first, as before.
    expect(claimedAt(64 * MiB, 4 * MiB, 16, 4 * MiB, 128 << 10, T).s.next([], T + 500)?.start).toBe(4 * MiB)
  })
  it('judges a range by its rate before taking its tail: not while it is young, not when it is about to finish', () => {
    const T = 1_000_000
    const written = new ByteRanges()
    const s = new Scheduler(planPieces(3 * MiB, 1 * MiB, 8), written, 8)
    const first = s.claim(0, 3 * MiB, T)
    // Too young to judge: nothing now, but a time to ask again.
    expect(s.next([], T + 10)).toBeNull()
    expect(s.stealableAt(T + 10)).toBe(T + STEAL_PROBE_MS)
    // Fast (2 MiB in 50 ms: the last MiB comes in 25 ms): it keeps its tail, and nobody needs to ask again.
    first.pos = 2 * MiB
    written.add(0, 2 * MiB)
    expect(s.next([], T + STEAL_PROBE_MS)).toBeNull()
    expect(s.stealableAt(T + STEAL_PROBE_MS)).toBeNull()
    // Slow (64 KiB in 50 ms: seconds to go): its tail is taken.
    const slowWritten = new ByteRanges()
    const slow = new Scheduler(planPieces(3 * MiB, 1 * MiB, 8), slowWritten, 8)
    const a = slow.claim(0, 3 * MiB, T)
    a.pos = 64 << 10
    slowWritten.add(0, 64 << 10)
    const b = slow.next([], T + STEAL_PROBE_MS)
    expect(b?.end).toBe(3 * MiB)
    expect(a.end).toBe(b?.start)
  })
  it('a slow connection robbed of its tail keeps only what its rate brings in a moment, so it can be split down small', () => {
    const T = 1_000_000
    // 64 KiB in 500 ms (128 KB/s): it keeps 64 KiB past its position as the margin, not a MiB.
    const { s, a: slow } = claimedAt(4 * MiB, 1 * MiB, 8, 4 * MiB, 64 << 10, T)
    s.next([], T + 500)
    expect(slow.end - slow.pos).toBeLessThanOrEqual(2 * MiB)
    // Idle connections keep taking halves of it (the thieves, too young to judge, are left alone).
    for (let i = 0; i < 8; i++) s.next([], T + 500)
    expect(slow.end - slow.pos).toBeLessThan(2 * MIN_STEAL + (64 << 10))
  })
  it('keeps new ranges to the boundaries of a source\'s units: a split of what is free, and a steal', () => {
    const size = 3 * MiB + 17
    const plain = new Scheduler(planPieces(size, 4 * MiB, 4), new ByteRanges(), 8)
    expect(plain.next()?.end).toBe(Math.ceil(size / 8))
    const units = new Scheduler(planPieces(size, 4 * MiB, 4), new ByteRanges(), 8, () => MiB)
    const got: Array<[number, number]> = []
    for (let a = units.next(); a !== null; a = units.next()) got.push([a.start, a.end])
    // Every unit once, none split, none asked twice.
    expect(got).toEqual([[0, MiB], [MiB, 2 * MiB], [2 * MiB, 3 * MiB], [3 * MiB, size]])
    // A steal cuts on a unit boundary in the stolen half (the unaligned cut would be 4.5 MiB).
    const big = new Scheduler(planPieces(8 * MiB, 8 * MiB, 1), new ByteRanges(), 1, () => 3 * MiB)
    const a = big.next()
    const b = big.next()
    expect(b?.start).toBe(6 * MiB)
    expect(a?.end).toBe(6 * MiB)
    // No boundary leaves both sides enough: no steal.
    const none = new Scheduler(planPieces(8 * MiB, 8 * MiB, 1), new ByteRanges(), 1, () => 8 * MiB)
    none.next()
    expect(none.next()).toBeNull()
  })
  it('steals the tail under a reader waiting far ahead of a connection', () => {
    const s = new Scheduler(planPieces(8 * MiB, 8 * MiB, 1), new ByteRanges(), 1)
    const a = s.next()
    const b = s.next([6 * MiB])
    expect([b?.start, b?.end]).toEqual([6 * MiB, 8 * MiB])
    expect(a?.end).toBe(6 * MiB)
  })
  it('leaves a connection on its way to a patient reader (a peer reading along) alone; a range nobody fetches comes first', () => {
    const s = new Scheduler(planPieces(16 * MiB, 8 * MiB, 2), new ByteRanges(), 2)
    const a = s.next()
    expect([a?.start, a?.end]).toEqual([0, 8 * MiB])
    expect(s.urgentOffset([], [6 * MiB])).toBeNull()
    expect(s.urgentOffset([6 * MiB])).toBe(6 * MiB)
    // Patient at 6 MiB (a is coming) and at 12 MiB (nobody is): the free range under 12 MiB is taken first.
    const b = s.next([], 0, Number.POSITIVE_INFINITY, [6 * MiB, 12 * MiB])
    expect([b?.start, b?.end]).toEqual([12 * MiB, 16 * MiB])
    expect(a?.end).toBe(8 * MiB)
  })
  it('duplicates only a stalled tail too small to split', () => {
    const s = new Scheduler(planPieces(MIN_STEAL, MIN_STEAL, 1), new ByteRanges(), 1)
    const a = s.next([], 0, 1000)
    expect(a).not.toBeNull()
    expect(s.next([], 500, 1000)).toBeNull()
    const d = s.next([], 2000, 1000)
    expect(d?.duplicate).toBe(true)
    expect([d?.start, d?.end]).toEqual([a?.pos, a?.end])
  })
  it('a stalled range and its duplicate race: the first to land bytes stops the other where it is', () => {
    for (const winner of ['victim', 'duplicate'] as const) {
      const written = new ByteRanges()
      const s = new Scheduler(planPieces(MIN_STEAL, MIN_STEAL, 1), written, 1)
      const a = s.next([], 0, 1000) as Assignment
      a.pos += 4096
      written.add(0, 4096)
      const d = s.next([], 2000, 1000) as Assignment
      expect([d.duplicate, d.start]).toEqual([true, 4096])
      const [first, other] = winner === 'victim' ? [a, d] : [d, a]
      first.pos += 65536
      raceWon(first)
      expect(other.end).toBe(other.pos)
      expect(first.end).toBe(MIN_STEAL)
      // Decided once: later bytes of the loser (already in flight) change nothing.
      other.pos += 10
      raceWon(other)
      expect(first.end).toBe(MIN_STEAL)
    }
  })
  it('shrinks assignments near the end so connections finish together', () => {
    const s = new Scheduler(planPieces(64 * MiB, 4 * MiB, 16), new ByteRanges(), 16)
    const a = s.next()
    expect((a?.end ?? 0) - (a?.start ?? 0)).toBe(4 * MiB)
    const w = new ByteRanges()
    w.add(0, 62 * MiB)
    const late = new Scheduler(planPieces(64 * MiB, 4 * MiB, 16), w, 16)
    const b = late.next()
    expect((b?.end ?? 0) - (b?.start ?? 0)).toBe(MIN_STEAL)
  })
})
