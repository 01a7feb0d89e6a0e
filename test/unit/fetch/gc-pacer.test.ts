import { PassThrough, Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { GcPacer, paced } from '../../../node/fetch/gc-pacer.ts'

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
    const keep = Buffer.alloc(8 << 20, 1)
    await new Promise(resolve => setTimeout(resolve, 50))
    pacer.stop()
    expect(keep.length).toBe(8 << 20)
    expect(calls).toBeGreaterThanOrEqual(1)
    const after = calls
    await new Promise(resolve => setTimeout(resolve, 30))
    expect(calls).toBe(after)
  })
})

describe('paced', () => {
  it('passes every byte through unchanged and counts it', async () => {
    let calls = 0
    const pacer = new GcPacer({ gc: () => { calls++ }, everyBytes: 1000 })
    const chunks = Array.from({ length: 30 }, (_, i) => Buffer.alloc(100, i))
    const out: Buffer[] = []
    for await (const c of paced(Readable.from(chunks), pacer)) out.push(c as Buffer)
    expect(Buffer.concat(out).equals(Buffer.concat(chunks))).toBe(true)
    expect(calls).toBe(3)
  })

  it('is the body itself when no collector is exposed', () => {
    const body = Readable.from([Buffer.from('x')])
    expect(paced(body, new GcPacer())).toBe(body)
    expect(paced(body, undefined)).toBe(body)
  })

  it('destroys the source when the reader goes away, and carries a source error', async () => {
    const pacer = new GcPacer({ gc: () => {}, everyBytes: 1 })
    const source = new PassThrough()
    const counted = paced(source, pacer)
    counted.destroy()
    await new Promise(resolve => setImmediate(resolve))
    expect(source.destroyed).toBe(true)

    const failing = new PassThrough()
    const seen = new Promise<Error>(resolve => paced(failing, pacer).on('error', resolve))
    failing.destroy(new Error('upstream reset'))
    expect((await seen).message).toBe('upstream reset')
  })
})
