import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { PeerCorruptError } from '../../../node/cluster/verifying-body.ts'
import { VouchedBody, VouchingBody } from '../../../node/cluster/vouched-body.ts'
import type { VouchInit } from '../../../node/cluster/vouched-body.ts'
import { newVouchNonce, responseKey, VOUCH_FRAME, VOUCH_TAG_BYTES, vouchedLength, vouchKey, vouchNonce } from '../../../protocol/vouch.ts'

const F = VOUCH_FRAME

function chunks (data: Buffer, size: number): Readable {
  return Readable.from((function * () { for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size) })())
}

async function collect (stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = []
  for await (const c of stream) out.push(c)
  return Buffer.concat(out)
}

/** The wire bytes a vouching server sends for `data` as the range in `init`. */
async function framed (init: VouchInit, data: Buffer): Promise<Buffer> {
  let wire: Buffer = Buffer.alloc(0)
  await pipeline(chunks(data, 50_000), new VouchingBody(init), async (s: AsyncIterable<Buffer>) => { wire = await collect(s) })
  return wire
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
