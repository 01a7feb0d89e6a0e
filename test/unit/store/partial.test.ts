import { describe, expect, it } from 'vitest'
import { PieceBitmap } from '../../../node/store/partial.ts'
import { createLayout } from '../../../node/store/layout.ts'

describe('PieceBitmap', () => {
  it('sets, counts and round-trips through base64', () => {
    const b = new PieceBitmap(19)
    expect(b.set(0)).toBe(true)
    expect(b.set(0)).toBe(false)
    b.set(9)
    b.set(18)
    expect(b.set(19)).toBe(false)
    expect(b.done).toBe(3)
    const c = PieceBitmap.fromBase64(19, b.toBase64())
    expect([0, 9, 18].every(i => c.has(i))).toBe(true)
    expect(c.has(1)).toBe(false)
    expect(c.done).toBe(3)
    expect(c.complete).toBe(false)
  })
})

describe('layout', () => {
  it('shards blobs by digest prefix and refuses anything but a sha256 hex', () => {
    const l = createLayout('/c')
    expect(l.blobPath('ab'.repeat(32))).toBe(`/c/blobs/sha256/ab/${'ab'.repeat(32)}`)
    expect(() => l.blobPath('../../etc/passwd')).toThrow()
    expect(l.tempPath('url:x')).toMatch(/^\/c\/tmp\/[0-9a-f]{40}\.part$/)
  })
})
