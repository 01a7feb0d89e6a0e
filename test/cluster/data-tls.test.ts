import { randomBytes } from 'node:crypto'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readAll, startHolderPair } from './helpers.ts'
import type { HolderPair } from './helpers.ts'

describe('data port over HTTPS (data_tls: true)', () => {
  const MiB = 1 << 20
  const data = randomBytes(3 * MiB + 777)
  let pair: HolderPair

  beforeAll(async () => {
    pair = await startHolderPair(data, { cluster: { data_tls: true } })
  }, 60_000)

  afterAll(async () => {
    await pair.stop()
  })

  it('a member pulls a blob over TLS from the holder whose certificate its ticket named', async () => {
    const { a, b, digest, upstream } = pair
    const ticket = await b.cluster.running?.peers.ticket(a.peerId, digest)
    expect(ticket?.base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(ticket?.cert).toMatch(/^[0-9a-f]{64}$/)
    const src = pair.swarm(b, digest)
    const res = await src.fetch({ start: 0, end: data.length - 1 }, {})
    expect((await readAll(res.body)).equals(data)).toBe(true)
    expect(upstream.bytes).toBe(0)
  })

  it('the port answers nothing in plain HTTP, and without a ticket nothing over TLS either', async () => {
    const { a, digest } = pair
    const port = a.cluster.running?.data.port as number
    await expect(request(`http://127.0.0.1:${port}/v1/blobs/${digest}`, { headersTimeout: 5000 })).rejects.toThrow()
    const anyCert = new Agent({ connect: { rejectUnauthorized: false } })
    try {
      const none = await request(`https://127.0.0.1:${port}/v1/blobs/${digest}`, { dispatcher: anyCert })
      expect(none.statusCode).toBe(401)
      expect(await none.body.json()).toEqual({ error: 'BAD_TICKET' })
    } finally {
      await anyCert.close()
    }
  })
})
