import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CountedBody, VouchedFrames } from '../../../node/cluster/in-flight-bodies.ts'
import { PeerCorruptError } from '../../../node/cluster/verifying-body.ts'
import type { VouchInit } from '../../../node/cluster/vouched-body.ts'
import { vouchingChunks } from '../../../node/cluster/vouching-chunks.ts'
import { BufferPool } from '../../../node/fetch/buffer-pool.ts'
import { VolatileBody } from '../../../node/upstream/volatile-body.ts'
import { feedThrough } from './volatile-feed.ts'
import { VOUCH_FRAME, VOUCH_TAG_BYTES, vouchKey } from '../../../protocol/vouch.ts'

const F = VOUCH_FRAME

/** The wire bytes a vouching data port sends for `data` as the range in `init`. */
async function framed (init: VouchInit, data: Buffer): Promise<Buffer> {
  let pos = 0
  const chunks = vouchingChunks({
    next: async () => {
      if (pos >= data.length) return null
      const c = Buffer.from(data.subarray(pos, pos + 100_000))
      pos += c.length
      return c
    },
    recycle: () => {},
    close: () => {}
  }, init)
  const out: Buffer[] = []
  for (let c = await chunks.next(); c !== null; c = await chunks.next()) out.push(c)
  return Buffer.concat(out)
}

describe('reads of a peer\'s download in flight over a volatile body', () => {
  const key = vouchKey(randomBytes(32))
  const init: VouchInit = { key, digest: 'cd'.repeat(32), start: 3 * F + 17, end: 3 * F + 17 + 2 * F + 999 }
  const data = randomBytes(init.end - init.start)
  const conn = { resume: () => {}, abandon: () => {} }

  it('passes every frame whose tag matched, whatever the chunking, from one pooled frame buffer', async () => {
    const wire = await framed(init, data)
    for (const chunk of [1000, 65_536, F + VOUCH_TAG_BYTES + 1]) {
      const pool = new BufferPool()
      const raw = new VolatileBody(conn)
      let counted = 0
      const { out, err } = await feedThrough(new VouchedFrames(raw, { ...init, onBytes: n => { counted += n } }, pool), raw, wire, chunk)
      expect(err).toBeNull()
      expect(out.equals(data)).toBe(true)
      expect(counted).toBe(data.length)
      expect(pool.made).toBe(1)
    }
  })

  it('emits nothing while its consumer is paused, though one source chunk completes several frames', async () => {
    const wire = await framed(init, data)
    const raw = new VolatileBody(conn)
    const { out, err, whilePaused } = await feedThrough(new VouchedFrames(raw, init, new BufferPool()), raw, wire, wire.length, true)
    expect(err).toBeNull()
    expect(whilePaused).toBe(0)
    expect(out.equals(data)).toBe(true)
  })

  it('a wrong byte fails the body with PeerCorruptError before any byte of its frame passes', async () => {
    const wire = await framed(init, data)
    // A byte of the second frame (after the first frame's bytes and tag).
    wire.writeUInt8(wire.readUInt8(F + VOUCH_TAG_BYTES + 5) ^ 1, F + VOUCH_TAG_BYTES + 5)
    const raw = new VolatileBody(conn)
    const { out, err } = await feedThrough(new VouchedFrames(raw, init, new BufferPool()), raw, wire, 65_536)
    expect(err).toBeInstanceOf(PeerCorruptError)
    expect(out.equals(data.subarray(0, F))).toBe(true)
    expect(raw.destroyed).toBe(true)
  })

  it('a body cut mid-frame passes the whole frames before the cut and nothing of the cut one', async () => {
    const wire = await framed(init, data)
    const raw = new VolatileBody(conn)
    const { out, err } = await feedThrough(new VouchedFrames(raw, init, new BufferPool()), raw, wire.subarray(0, F + VOUCH_TAG_BYTES + 1000), 4096)
    expect(err).toBeNull()
    expect(out.equals(data.subarray(0, F))).toBe(true)
  })

  it('an open cluster\'s read passes its chunks on as they come, counted, and waits while paused', async () => {
    const raw = new VolatileBody(conn)
    let counted = 0
    const { out, err, whilePaused } = await feedThrough(new CountedBody(raw, n => { counted += n }), raw, data, 70_000, true)
    expect(err).toBeNull()
    expect(whilePaused).toBe(0)
    expect(out.equals(data)).toBe(true)
    expect(counted).toBe(data.length)
  })
})
