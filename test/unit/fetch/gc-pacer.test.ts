import { describe, expect, it } from 'vitest'
import { GcPacer } from '../../../node/fetch/gc-pacer.ts'

describe('GcPacer', () => {
  it('asks for a young-generation collection once per budget of moved bytes', () => {
    const calls: unknown[] = []
    const pacer = new GcPacer({ gc: (o) => { calls.push(o) }, everyBytes: 1000 })
    for (let i = 0; i < 35; i++) pacer.moved(100)
    expect(calls).toEqual([{ type: 'minor' }, { type: 'minor' }, { type: 'minor' }])
  })

  it('does nothing without an exposed gc', () => {
    const pacer = new GcPacer({ everyBytes: 1 })
    expect(pacer.enabled).toBe(false)
    expect(() => { pacer.moved(10) }).not.toThrow()
  })
})

describe('GcPacer watch', () => {
  it('collects when external memory grows by the budget between checks, and stops cleanly', async () => {
    let calls = 0
    const pacer = new GcPacer({ gc: () => { calls++ }, everyBytes: 1 << 20 })
    pacer.start(5)
    const keep = Buffer.alloc(4 << 20, 1)
    await new Promise(resolve => setTimeout(resolve, 50))
    pacer.stop()
    expect(keep.length).toBe(4 << 20)
    expect(calls).toBeGreaterThanOrEqual(1)
    const after = calls
    await new Promise(resolve => setTimeout(resolve, 30))
    expect(calls).toBe(after)
  })
})
