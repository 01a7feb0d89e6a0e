import { describe, expect, it } from 'vitest'
import { planEviction } from '../../../node/store/eviction.ts'
import type { EvictionEntry } from '../../../node/store/eviction.ts'

const e = (digest: string, size: number, lastAccess: number, extra: Partial<EvictionEntry> = {}): EvictionEntry =>
  ({ digest, size, lastAccess, inUse: false, pinned: false, ...extra })
const budget = { maxBytes: 1000, minFreeBytes: 100, highWatermark: 0.9, lowWatermark: 0.7 }
const entries = [e('a', 300, 1), e('b', 300, 3), e('c', 300, 2)]

describe('planEviction', () => {
  const cases: Array<{ name: string, entries: EvictionEntry[], used: number, free: number, incoming: number, evict: string[], fits: boolean }> = [
    { name: 'under the high watermark: nothing', entries, used: 900, free: 10_000, incoming: 0, evict: [], fits: true },
    { name: 'above high: oldest first down to low', entries, used: 900, free: 10_000, incoming: 100, evict: ['a'], fits: true },
    { name: 'incoming file makes room for itself', entries, used: 600, free: 10_000, incoming: 350, evict: ['a'], fits: true },
    { name: 'free-disk floor evicts even under budget', entries, used: 300, free: 150, incoming: 200, evict: ['a'], fits: true },
    { name: 'a periodic sweep goes down to the low watermark', entries, used: 950, free: 10_000, incoming: 0, evict: ['a'], fits: true },
    { name: 'low free disk with an incoming file evicts several', entries, used: 900, free: 50, incoming: 400, evict: ['a', 'c'], fits: true },
    { name: 'blobs in use and pinned are kept', entries: [e('a', 300, 1, { inUse: true }), e('b', 300, 3), e('c', 300, 2, { pinned: true })], used: 900, free: 10_000, incoming: 200, evict: ['b'], fits: true },
    { name: 'cannot fit when everything is in use', entries: [e('a', 900, 1, { inUse: true })], used: 900, free: 10_000, incoming: 200, evict: [], fits: false },
    { name: 'larger than the whole budget never fits', entries, used: 0, free: 10_000, incoming: 1001, evict: [], fits: false }
  ]
  for (const c of cases) {
    it(c.name, () => {
      const plan = planEviction(c.entries, budget, { usedBytes: c.used, freeBytes: c.free, incomingBytes: c.incoming })
      expect(plan.evict).toEqual(c.evict)
      expect(plan.fits).toBe(c.fits)
    })
  }
})

describe('planEviction under a free-disk floor', () => {
  const floor = (minFreeBytes: number): typeof budget => ({ ...budget, minFreeBytes })
  it('keeps the cache when emptying it would not reach the floor (other files fill the disk)', () => {
    const plan = planEviction(entries, floor(5000), { usedBytes: 900, freeBytes: 10, incomingBytes: 0 })
    expect(plan).toMatchObject({ evict: [], fits: false, floorUnreachable: true })
  })
  it('still evicts for the byte budget then', () => {
    const plan = planEviction(entries, floor(5000), { usedBytes: 950, freeBytes: 10, incomingBytes: 0 })
    expect(plan).toMatchObject({ evict: ['a'], fits: false, floorUnreachable: true })
  })
  it('evicts up to a floor it can reach', () => {
    const plan = planEviction(entries, floor(500), { usedBytes: 900, freeBytes: 300, incomingBytes: 0 })
    expect(plan).toMatchObject({ evict: ['a'], fits: true, floorUnreachable: false })
  })
})
