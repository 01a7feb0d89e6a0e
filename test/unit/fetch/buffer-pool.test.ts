import { describe, expect, it } from 'vitest'
import { BufferPool } from '../../../node/fetch/buffer-pool.ts'

describe('BufferPool', () => {
  it('lends its own buffers again once given back, by size, and only once each', () => {
    const pool = new BufferPool()
    const a = pool.take(1024)
    const b = pool.take(4096)
    expect(a.length).toBe(1024)
    pool.give(a.subarray(0, 10))
    pool.give(a)
    const c = pool.take(1024)
    expect(c.buffer).toBe(a.buffer)
    // Given back twice, lent once: the next take of that size is a new buffer.
    const d = pool.take(1024)
    expect(d.buffer).not.toBe(a.buffer)
    pool.give(b)
    expect(pool.take(4096).buffer).toBe(b.buffer)
    expect(pool.made).toBe(3)
  })

  it('ignores buffers it did not make and keeps no more idle bytes than its budget', () => {
    const pool = new BufferPool({ maxIdleBytes: 2048 })
    pool.give(Buffer.alloc(1024))
    pool.take(1024)
    expect(pool.made).toBe(1)
    const bufs = [pool.take(1024), pool.take(1024), pool.take(1024)]
    for (const b of bufs) pool.give(b)
    pool.take(1024)
    pool.take(1024)
    pool.take(1024)
    // Two came back from the pool, the third was left to the collector.
    expect(pool.made).toBe(5)
  })
})
