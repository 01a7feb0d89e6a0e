import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { VerifiedUnits } from '../../../node/cluster/verified-units.ts'
import { PeerCorruptError } from '../../../node/cluster/verifying-body.ts'
import { BufferPool } from '../../../node/fetch/buffer-pool.ts'
import { VolatileBody } from '../../../node/upstream/volatile-body.ts'
import { PIECE_HASH_UNIT, PieceHasher } from '../../../protocol/pieces.ts'

const U = PIECE_HASH_UNIT

/**
 * Feeds `data` through a VolatileBody the way RangeSockets does: every chunk is a view of one shared
 * buffer, scribbled over as soon as the delivery returns. Resolves with what came out and how it ended.
 */
async function through (body: VerifiedUnits, raw: VolatileBody, data: Buffer, chunk: number): Promise<{ out: Buffer, err: unknown }> {
  const out: Buffer[] = []
  const ended = new Promise<unknown>((resolve) => {
    body.on('data', (c: Buffer) => { out.push(Buffer.from(c)) })
    body.once('end', () => resolve(null))
    body.once('error', resolve)
  })
  const shared = Buffer.alloc(chunk)
  await new Promise(resolve => setImmediate(resolve))
  for (let i = 0; i < data.length && !raw.destroyed; i += chunk) {
    const n = data.copy(shared, 0, i, i + chunk)
    raw.deliver(shared.subarray(0, n))
    shared.fill(0xee)
  }
  raw.finish()
  return { out: Buffer.concat(out), err: await ended }
}

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
      const { out, err } = await through(body, raw, data.subarray(U), chunk)
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
    const { out, err } = await through(body, raw, bad, 65_536)
    expect(err).toBeInstanceOf(PeerCorruptError)
    expect((err as PeerCorruptError).piece).toBe(2)
    expect(out.equals(data.subarray(0, 2 * U))).toBe(true)
    expect(raw.destroyed).toBe(true)
  })

  it('a span cut short passes on only whole verified units', async () => {
    const raw = new VolatileBody(conn)
    const body = new VerifiedUnits(raw, { list, size: data.length, spanStart: 0, from: 0, to: data.length }, new BufferPool())
    const { out, err } = await through(body, raw, data.subarray(0, U + 500), 4096)
    expect(err).toBeNull()
    expect(out.length).toBe(U)
    expect(createHash('sha256').update(out).digest().equals(list.subarray(0, 32))).toBe(true)
  })

  it('emits nothing while its consumer is paused, though one source chunk completes several units', async () => {
    const raw = new VolatileBody(conn)
    const body = new VerifiedUnits(raw, { list, size: data.length, spanStart: 0, from: 0, to: data.length }, new BufferPool())
    const out: Buffer[] = []
    let paused = false
    let whilePaused = 0
    const ended = new Promise<unknown>((resolve) => {
      body.on('data', (c: Buffer) => {
        if (paused) whilePaused++
        out.push(Buffer.from(c))
        // As the body sink does when a write goes to the thread pool: pause, resume once written.
        paused = true
        body.pause()
        setTimeout(() => { paused = false; body.resume() }, 2)
      })
      body.once('end', () => resolve(null))
      body.once('error', resolve)
    })
    await new Promise(resolve => setImmediate(resolve))
    const shared = Buffer.from(data)
    raw.deliver(shared)
    shared.fill(0xee)
    raw.finish()
    expect(await ended).toBeNull()
    expect(whilePaused).toBe(0)
    expect(Buffer.concat(out).equals(data)).toBe(true)
  })
})
