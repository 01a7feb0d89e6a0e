import { describe, expect, it } from 'vitest'
import { lruCache } from '../../../node/lru.ts'

describe('lruCache', () => {
  it('keeps at most its number of entries, dropping the least recently used', () => {
    const cache = lruCache<string, number>(3)
    cache.set('a', 1)
    cache.set('b', 2)
    cache.set('c', 3)
    cache.get('a')
    cache.set('d', 4)
    expect([...cache.keys()].sort()).toEqual(['a', 'c', 'd'])
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, i)
    expect(cache.size).toBe(3)
  })

  it('forgets entries older than its ttl', async () => {
    const cache = lruCache<string, true>(10, { ttl: 30 })
    cache.set('a', true)
    expect(cache.has('a')).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 60))
    expect(cache.has('a')).toBe(false)
  })
})
