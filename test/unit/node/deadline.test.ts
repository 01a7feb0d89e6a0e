import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { deadline } from '../../../node/abort.ts'

describe('deadline', () => {
  it('aborts after its time, with a timeout reason', async () => {
    const d = deadline(20)
    expect(d.signal.aborted).toBe(false)
    await sleep(60)
    expect(d.signal.aborted).toBe(true)
    expect((d.signal.reason as Error).name).toBe('TimeoutError')
  })

  it('cleared, it never fires', async () => {
    const d = deadline(20)
    d.clear()
    await sleep(60)
    expect(d.signal.aborted).toBe(false)
  })

  it("aborts with its parent, at once or later, with the parent's reason", () => {
    const early = new AbortController()
    early.abort(new Error('before'))
    expect(deadline(10_000, early.signal).signal.reason).toEqual(new Error('before'))
    const later = new AbortController()
    const d = deadline(10_000, later.signal)
    later.abort(new Error('after'))
    expect(d.signal.aborted).toBe(true)
    expect(d.signal.reason).toEqual(new Error('after'))
    d.clear()
  })

  it('cleared, it lets its parent go', () => {
    const parent = new AbortController()
    const d = deadline(10_000, parent.signal)
    d.clear()
    parent.abort()
    expect(d.signal.aborted).toBe(false)
  })
})
