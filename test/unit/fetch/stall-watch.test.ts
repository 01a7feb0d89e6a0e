import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { fillRange } from '../../../node/fetch/passthrough-range.ts'
import { FIRST_STALL_MS, StallWatch } from '../../../node/fetch/stall-watch.ts'
import type { Source, SourceResponse } from '../../../node/fetch/upstream-source.ts'

beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }) })
afterEach(() => { vi.useRealTimers() })

describe('StallWatch: when a pass-through request that sends nothing is given up', () => {
  it('waits twice as long after each stall of a range, up to the read timeout', () => {
    const watch = new StallWatch(30_000)
    expect([0, 1, 2, 3, 4].map(n => watch.limitMs(n))).toEqual([FIRST_STALL_MS, 2 * FIRST_STALL_MS, 4 * FIRST_STALL_MS, 30_000, 30_000])
    expect(watch.atCap(watch.limitMs(2))).toBe(false)
    expect(watch.atCap(watch.limitMs(3))).toBe(true)
  })

  it('learns an upstream slow to answer: later limits leave twice its longest wait before bytes', async () => {
    const watch = new StallWatch(60_000)
    const a = watch.attempt(new AbortController().signal, 0)
    await vi.advanceTimersByTimeAsync(4_000)
    a.touch()
    a.done()
    expect(a.stalled).toBe(false)
    expect(watch.limitMs(0)).toBe(8_000)
  })

  it('aborts a request that sent nothing for the limit, not one that keeps sending or whose reader holds it back', async () => {
    const watch = new StallWatch(30_000)
    const quiet = watch.attempt(new AbortController().signal, 0)
    const busy = watch.attempt(new AbortController().signal, 0)
    const held = watch.attempt(new AbortController().signal, 0)
    held.hold(true)
    for (let t = 0; t < 12; t++) {
      await vi.advanceTimersByTimeAsync(1_000)
      busy.touch()
    }
    expect(quiet.signal.aborted).toBe(true)
    expect(quiet.stalled).toBe(true)
    expect(busy.signal.aborted).toBe(false)
    expect(held.signal.aborted).toBe(false)
    held.hold(false)
    await vi.advanceTimersByTimeAsync(FIRST_STALL_MS + 1)
    expect(held.stalled).toBe(true)
    for (const a of [quiet, busy, held]) a.done()
  })

  it('leaves a request the stream stopped alone: it is aborted as a client leaving, not as a stall', () => {
    const outer = new AbortController()
    const a = new StallWatch(30_000).attempt(outer.signal, 0)
    outer.abort()
    expect(a.signal.aborted).toBe(true)
    expect(a.stalled).toBe(false)
    const err = new Error('aborted')
    expect(a.failure(err)).toBe(err)
    a.done()
  })
})

describe('fillRange with a request that hangs', () => {
  it('asks again after the stall limit and fills the range from the new answer', async () => {
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i & 0xff))
    const asks: number[] = []
    const src: Source = {
      name: 'test',
      fetch: async (range, options) => {
        asks.push(performance.now())
        if (asks.length === 1) {
          // Never answers: only its signal ends it.
          return await new Promise<SourceResponse>((_resolve, reject) => { options.signal?.addEventListener('abort', () => { reject(new Error('aborted')) }) })
        }
        const { start, end } = range ?? { start: 0, end: data.length - 1 }
        return { status: 206, headers: {}, body: Readable.from([data.subarray(start, end + 1)]) as unknown as SourceResponse['body'], url: new URL('http://up/f'), contentRange: { start, end, total: data.length } }
      }
    }
    const into = { start: 0, buf: Buffer.alloc(3000), filled: 0, landed: () => {} }
    const done = fillRange(src, null, into, () => {}, new AbortController().signal, { outageMs: 60_000, watch: new StallWatch(30_000) })
    await vi.advanceTimersByTimeAsync(FIRST_STALL_MS + 10)
    await done
    expect(into.buf.equals(data)).toBe(true)
    expect(asks).toHaveLength(2)
    const [first, second] = asks as [number, number]
    expect(second - first).toBeGreaterThanOrEqual(FIRST_STALL_MS)
  })
})
