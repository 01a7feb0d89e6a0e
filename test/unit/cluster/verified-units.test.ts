import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { VerifiedUnits } from '../../../node/cluster/verified-units.ts'
import { PeerCorruptError } from '../../../node/cluster/verifying-body.ts'
import { BufferPool } from '../../../node/fetch/buffer-pool.ts'
import { VolatileBody } from '../../../node/upstream/volatile-body.ts'
import { feedThrough } from './volatile-feed.ts'
import { PIECE_HASH_UNIT, PieceHasher } from '../../../protocol/pieces.ts'

const U = PIECE_HASH_UNIT

describe('verified units over a volatile body', () => {
  const data = Buffer.alloc(3 * U + 100)
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff
  const h = new PieceHasher()
  h.update(data)
  const list = h.digest()
  const conn = { resume: () => {}, abandon: () => {} }

  it('passes on exactly the asked bytes of a verified span, whatever the chunking, from one pooled unit buffer', async () => {
    for (const chunk of [1000, 65_536, 65_536 + 3]) {
      const pool = new BufferPool()
      const raw = new VolatileBody(conn)
      const body = new VerifiedUnits(raw, { list, size: data.length, spanStart: U, from: U + 10, to: 3 * U + 50 }, pool)
      const { out, err } = await feedThrough(body, raw, data.subarray(U), chunk)
      expect(err).toBeNull()
      expect(out.equals(data.subarray(U + 10, 3 * U + 50))).toBe(true)
      expect(pool.made).toBe(1)
    }
  })

  it('a bad unit fails the body before any of its bytes pass', async () => {
    const bad = Buffer.from(data)
    bad[2 * U + 5] = (bad[2 * U + 5] as number) ^ 1
    const raw = new VolatileBody(conn)
    const body = new VerifiedUnits(raw, { list, size: data.length, spanStart: 0, from: 0, to: data.length }, new BufferPool())
    const { out, err } = await feedThrough(body, raw, bad, 65_536)
    expect(err).toBeInstanceOf(PeerCorruptError)
    expect((err as PeerCorruptError).piece).toBe(2)
    expect(out.equals(data.subarray(0, 2 * U))).toBe(true)
    expect(raw.destroyed).toBe(true)
  })

  it('a span cut short passes on only whole verified units', async () => {
    const raw = new VolatileBody(conn)
    const body = new VerifiedUnits(raw, { list, size: data.length, spanStart: 0, from: 0, to: data.length }, new BufferPool())
    const { out, err } = await feedThrough(body, raw, data.subarray(0, U + 500), 4096)
    expect(err).toBeNull()
    expect(out.length).toBe(U)
    expect(createHash('sha256').update(out).digest().equals(list.subarray(0, 32))).toBe(true)
  })

  it('emits nothing while its consumer is paused, though one source chunk completes several units', async () => {
    const raw = new VolatileBody(conn)
    const body = new VerifiedUnits(raw, { list, size: data.length, spanStart: 0, from: 0, to: data.length }, new BufferPool())
    const { out, err, whilePaused } = await feedThrough(body, raw, data, data.length, true)
    expect(err).toBeNull()
    expect(whilePaused).toBe(0)
    expect(out.equals(data)).toBe(true)
  })
})
