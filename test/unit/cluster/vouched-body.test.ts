import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { PeerCorruptError } from '../../../node/cluster/verifying-body.ts'
import { VouchedBody } from '../../../node/cluster/vouched-body.ts'
import type { VouchInit } from '../../../node/cluster/vouched-body.ts'
import { vouchingChunks } from '../../../node/cluster/vouching-chunks.ts'
import type { BlobChunks } from '../../../node/fetch/blob-chunks.ts'
import { newVouchNonce, responseKey, VOUCH_FRAME, VOUCH_TAG_BYTES, vouchedLength, vouchKey, vouchNonce } from '../../../protocol/vouch.ts'

const F = VOUCH_FRAME

function chunks (data: Buffer, size: number): Readable {
  return Readable.from((function * () { for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size) })())
}

/** `data` in `size`-byte buffers of their own, lent like a pool's; `out` counts those not given back. */
function lent (data: Buffer, size: number): BlobChunks & { out: Set<ArrayBufferLike>, closed: boolean } {
  let pos = 0
  const out = new Set<ArrayBufferLike>()
  const c = {
    out,
    closed: false,
    next: async () => {
      if (pos >= data.length) return null
      const buf = Buffer.allocUnsafeSlow(Math.min(size, data.length - pos))
      data.copy(buf, 0, pos, pos + buf.length)
      pos += buf.length
      out.add(buf.buffer)
      return buf
    },
    recycle: (buf: Buffer) => {
      if (!out.delete(buf.buffer)) throw new Error('a buffer given back twice, or one never lent')
    },
    close: () => { c.closed = true }
  }
  return c
}

/**
 * The wire bytes a vouching server sends for `data` as the range in `init`, written like a response
 * does: every chunk given back once written, the buffers of a chunk that crosses a frame's end only
 * after both of its views went out.
 */
async function framed (init: VouchInit, data: Buffer, size = 50_000): Promise<Buffer> {
  const source = lent(data, size)
  const chunks = vouchingChunks(source, init)
  const wire: Buffer[] = []
  for (let c = await chunks.next(); c !== null; c = await chunks.next()) {
    wire.push(Buffer.from(c))
    chunks.recycle(c)
  }
  chunks.close()
  expect(source.out.size).toBe(0)
  expect(source.closed).toBe(true)
  return Buffer.concat(wire)
}

/** What a reader passes on from `wire`, and the error it ended with (if any). */
async function read (init: VouchInit, wire: Buffer, chunk = 70_001): Promise<{ out: Buffer, err: unknown }> {
  const out: Buffer[] = []
  const err = await pipeline(chunks(wire, chunk), new VouchedBody(init), async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) out.push(c)
  }).then(() => null, (e: unknown) => e)
  return { out: Buffer.concat(out), err }
}

function flip (b: Buffer, at: number): void {
  b.writeUInt8(b.readUInt8(at) ^ 1, at)
}

describe('vouched reads of a download in flight', () => {
  const key = vouchKey(randomBytes(32))
  const digest = 'ab'.repeat(32)
  // A range that starts mid-blob and ends mid-frame.
  const init: VouchInit = { key, digest, start: 5 * F + 123, end: 5 * F + 123 + 3 * F + 4567 }
  const data = randomBytes(init.end - init.start)

  it('passes every byte of a range whose frames all carry the right tag, whatever the chunking', async () => {
    const wire = await framed(init, data)
    expect(wire.length).toBe(vouchedLength(init.start, init.end))
    for (const size of [4096, 200_000, F]) expect((await framed(init, data, size)).equals(wire)).toBe(true)
    for (const chunk of [1000, 70_001, F + VOUCH_TAG_BYTES, wire.length]) {
      const { out, err } = await read(init, wire, chunk)
      expect(err).toBeNull()
      expect(out.equals(data)).toBe(true)
    }
  })

  it('a wrong byte fails the read with PeerCorruptError and nothing of its frame passes', async () => {
    const wire = await framed(init, data)
    // A byte in the third frame (frames are followed by their tag on the wire).
    flip(wire, 2 * (F + VOUCH_TAG_BYTES) + 10)
    const { out, err } = await read(init, wire)
    expect(err).toBeInstanceOf(PeerCorruptError)
    expect(out.equals(data.subarray(0, 2 * F))).toBe(true)
  })

  it('a wrong tag, a tag made with another key or for other offsets fails at the first frame', async () => {
    const wire = await framed(init, data)
    const badTag = Buffer.from(wire)
    flip(badTag, F)
    expect((await read(init, badTag)).err).toBeInstanceOf(PeerCorruptError)

    const otherKey = await framed({ ...init, key: vouchKey(randomBytes(32)) }, data)
    const byOtherKey = await read(init, otherKey)
    expect(byOtherKey.err).toBeInstanceOf(PeerCorruptError)
    expect(byOtherKey.out.length).toBe(0)

    // The right bytes of another offset (a peer serving the wrong slice) do not pass either.
    const shifted = await framed({ ...init, start: init.start + F, end: init.end + F }, data)
    expect((await read(init, shifted)).err).toBeInstanceOf(PeerCorruptError)
    const otherBlob = await framed({ ...init, digest: 'cd'.repeat(32) }, data)
    expect((await read(init, otherBlob)).err).toBeInstanceOf(PeerCorruptError)
  })

  it('a body cut mid-frame passes the whole frames before the cut and nothing of the cut one', async () => {
    const wire = await framed(init, data)
    const cut = wire.subarray(0, 2 * (F + VOUCH_TAG_BYTES) + F - 5)
    const { out, err } = await read(init, cut)
    expect(err).toBeNull()
    expect(out.equals(data.subarray(0, 2 * F))).toBe(true)
    // Cut inside a tag: that frame is held too.
    const inTag = await read(init, wire.subarray(0, F + 10))
    expect(inTag.out.length).toBe(0)
  })

  it('bytes beyond the last tag fail the read', async () => {
    const wire = await framed(init, data)
    const { err } = await read(init, Buffer.concat([wire, Buffer.from('x')]))
    expect(err).toBeInstanceOf(PeerCorruptError)
  })

  it('the vouching side gives a lent buffer back once every view of it was written, never earlier', async () => {
    // 200_000-byte chunks cross frame ends: such a chunk goes out as two views around a tag.
    const source = lent(data, 200_000)
    const chunks = vouchingChunks(source, init)
    const held: Buffer[] = []
    for (let c = await chunks.next(); c !== null; c = await chunks.next()) held.push(c)
    const tags = held.filter(c => c.length === VOUCH_TAG_BYTES)
    expect(tags.length).toBe(Math.ceil(data.length / F))
    const views = held.filter(c => c.length !== VOUCH_TAG_BYTES)
    expect(views.length).toBeGreaterThan(source.out.size)
    // First views of each buffer: nothing may go back while another view of it is still out.
    const firstOf = new Map<ArrayBufferLike, Buffer>()
    for (const v of views) if (!firstOf.has(v.buffer)) firstOf.set(v.buffer, v)
    for (const v of firstOf.values()) chunks.recycle(v)
    for (const t of tags) chunks.recycle(t)
    const shared = views.filter(v => views.filter(w => w.buffer === v.buffer).length > 1)
    expect(shared.length).toBeGreaterThan(0)
    expect(new Set(source.out)).toEqual(new Set(shared.map(v => v.buffer)))
    for (const v of views) if (firstOf.get(v.buffer) !== v) chunks.recycle(v)
    expect(source.out.size).toBe(0)
  })

  it('the vouching side refuses to send more than its range', async () => {
    const small = { ...init, end: init.start + 10 }
    await expect(framed(small, data.subarray(0, 11))).rejects.toThrow(RangeError)
  })

  it('every response has a key of its own, named by the nonce in its header', async () => {
    const one = newVouchNonce()
    const two = newVouchNonce()
    expect(vouchNonce(one.header)?.equals(one.nonce)).toBe(true)
    expect(one.header).not.toBe(two.header)
    for (const bad of [undefined, '1', 'hmac-sha256 262144 00', `${one.header}0`, one.header.toUpperCase()]) expect(vouchNonce(bad), String(bad)).toBeNull()
    // The same bytes under two responses' keys carry different tags: a tag is never reused.
    const a = await framed({ ...init, key: responseKey(key, one.nonce) }, data)
    const b = await framed({ ...init, key: responseKey(key, two.nonce) }, data)
    expect(a.subarray(F, F + VOUCH_TAG_BYTES).equals(b.subarray(F, F + VOUCH_TAG_BYTES))).toBe(false)
    expect((await read({ ...init, key: responseKey(key, two.nonce) }, a)).err).toBeInstanceOf(PeerCorruptError)
  })
})
