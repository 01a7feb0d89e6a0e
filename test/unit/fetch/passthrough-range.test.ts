import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { fillRange } from '../../../node/fetch/passthrough-range.ts'
import type { RangeTarget } from '../../../node/fetch/passthrough-range.ts'
import type { Source, SourceResponse } from '../../../node/fetch/upstream-source.ts'

const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff))

/** A body of `bytes` in 700-byte chunks, failing after `breakAfter` bytes when given. */
function body (bytes: Buffer, breakAfter?: number): SourceResponse['body'] {
  async function * gen (): AsyncGenerator<Buffer> {
    for (let p = 0; p < bytes.length; p += 700) {
      if (breakAfter !== undefined && p >= breakAfter) throw new Error('connection reset')
      yield bytes.subarray(p, Math.min(bytes.length, p + 700))
    }
  }
  return Readable.from(gen(), { objectMode: false }) as unknown as SourceResponse['body']
}

function ranged (start: number, end: number, extra: Partial<SourceResponse> = {}, breakAfter?: number): SourceResponse {
  return { status: 206, headers: {}, body: body(data.subarray(start, end + 1), breakAfter), url: new URL('http://up/f'), contentRange: { start, end, total: data.length }, ...extra }
}

/** A source that answers each ask with `answer(ask, n)` and records the asks. */
function source (answer: (ask: { start: number, end: number }, n: number) => SourceResponse): { src: Source, asks: Array<{ start: number, end: number }> } {
  const asks: Array<{ start: number, end: number }> = []
  return { asks, src: { name: 'test', fetch: async (range) => { const ask = range ?? { start: 0, end: data.length - 1 }; asks.push(ask); return answer(ask, asks.length) } } }
}

function target (start: number, length: number): RangeTarget & { landings: number } {
  const t = { start, buf: Buffer.alloc(length), filled: 0, landings: 0, landed: () => { t.landings++ } }
  return t
}

describe('fillRange: one range of a pass-through into its buffer', () => {
  it('waits out an upstream that is away (refused, reset before answering, 5xx) past its retries, backing off', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
    let n = 0
    const src: Source = { name: 'test', fetch: async (range) => { if (++n <= 6) throw refused; return ranged(range?.start ?? 0, range?.end ?? data.length - 1) } }
    const into = target(0, 1000)
    const t0 = Date.now()
    await fillRange(src, null, into, () => {}, new AbortController().signal, { outageMs: 10_000 })
    expect(into.buf.equals(data.subarray(0, 1000))).toBe(true)
    expect(n).toBe(7)
    // 100, 200, 400, 800, 1600, 3200 ms between the tries.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(6000)
  })

  it('goes on from the last byte when a connection breaks', async () => {
    const { src, asks } = source((ask, n) => ranged(ask.start, ask.end, {}, n === 1 ? 1400 : undefined))
    const into = target(1000, 3000)
    let counted = 0
    await fillRange(src, null, into, n => { counted += n }, new AbortController().signal)
    expect(into.buf.equals(data.subarray(1000, 4000))).toBe(true)
    expect(asks).toEqual([{ start: 1000, end: 3999 }, { start: 2400, end: 3999 }])
    expect(counted).toBe(3000)
    expect(into.landings).toBeGreaterThan(1)
  })

  it('skips the bytes before the range in a 200, and stops reading once full', async () => {
    const { src } = source(() => ({ status: 200, headers: {}, body: body(data), url: new URL('http://up/f'), contentRange: null }))
    const into = target(1234, 1000)
    await fillRange(src, null, into, () => {}, new AbortController().signal)
    expect(into.buf.equals(data.subarray(1234, 2234))).toBe(true)
  })

  it('takes the first response when it starts there, and asks again when its body is already gone', async () => {
    const { src, asks } = source(ask => ranged(ask.start, ask.end))
    const first = ranged(0, 1999)
    const into = target(0, 2000)
    await fillRange(src, first, into, () => {}, new AbortController().signal)
    expect(asks).toEqual([])
    expect(into.buf.equals(data.subarray(0, 2000))).toBe(true)

    const gone = ranged(0, 1999)
    gone.body.destroy()
    await new Promise(resolve => setImmediate(resolve))
    const again = target(0, 2000)
    await fillRange(src, gone, again, () => {}, new AbortController().signal)
    expect(asks).toEqual([{ start: 0, end: 1999 }])
    expect(again.buf.equals(data.subarray(0, 2000))).toBe(true)
  })

  it('gives up after repeated breaks with no progress (an upstream away for longer than it waits), and on bytes nobody vouched for', async () => {
    const broken = source(ask => ranged(ask.start, ask.end, {}, 0))
    await expect(fillRange(broken.src, null, target(0, 1000), () => {}, new AbortController().signal, { outageMs: 0 })).rejects.toThrow('connection reset')
    expect(broken.asks).toHaveLength(4)
    const unvouched = source(ask => ranged(ask.start, ask.end, { needsDigest: true }))
    await expect(fillRange(unvouched.src, null, target(0, 1000), () => {}, new AbortController().signal)).rejects.toThrow(/unverified/)
  })
})
