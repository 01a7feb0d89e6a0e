import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { CacheSpace } from '../../../node/store/cache-space.ts'
import type { EvictionEntry } from '../../../node/store/eviction.ts'

describe('reserving space when victims come into use while the plan is carried out', () => {
  function space (evictable: (id: string, round: number) => boolean): { space: CacheSpace, asked: string[] } {
    const held = new Map<string, number>([['a', 400], ['b', 400]])
    const asked: string[] = []
    let calls = 0
    const host = {
      logger: pino({ level: 'silent' }),
      freeBytes: async () => Number.POSITIVE_INFINITY,
      usedBytes: () => [...held.values()].reduce((x, y) => x + y, 0),
      idlePartialBytes: () => 0,
      entries: (): EvictionEntry[] => [...held].map(([digest, size], i) => ({ digest, size, lastAccess: i, inUse: false, pinned: false })),
      evictOne: async (id: string) => {
        asked.push(id)
        if (!evictable(id, Math.floor(calls++ / 2) + 1)) return false
        held.delete(id)
        return true
      }
    }
    return { space: new CacheSpace(host, { budget: { maxBytes: 1000, minFreeBytes: 0, highWatermark: 0.95, lowWatermark: 0.85 }, lruEnabled: true }), asked }
  }

  it('plans again around a victim that stayed, and takes the file when the rest made room', async () => {
    // a stays the first time (a hit took it up), and goes when planned again.
    const { space: s, asked } = space((id, round) => id !== 'a' || round > 1)
    expect(await s.reserve(700)).toBe(true)
    expect(asked).toEqual(['a', 'b', 'a'])
  })

  it('passes the file through when victims keep staying: what the last plan counted as freed is not', async () => {
    const { space: s, asked } = space(() => false)
    expect(await s.reserve(700)).toBe(false)
    // Three plans, each asking for both.
    expect(asked).toHaveLength(6)
  })
})
