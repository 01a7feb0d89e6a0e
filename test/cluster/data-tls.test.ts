import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UpstreamSource } from '../../node/fetch/upstream-source.ts'
import { putBlob, startClusterNode, startFileUpstream, until } from './helpers.ts'
import type { ClusterTestNode, CountingUpstream } from './helpers.ts'

async function readAll (body: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of body) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

describe('data port over HTTPS (data_tls: true)', () => {
  const MiB = 1 << 20
  const data = randomBytes(3 * MiB + 777)
  let a: ClusterTestNode
  let b: ClusterTestNode
  let upstream: CountingUpstream
  let digest: string
  const agent = new Agent()

  beforeAll(async () => {
    a = await startClusterNode({ data_tls: true })
    b = await startClusterNode({ data_tls: true, peers: [a.addr], lookup_ms: 5000 })
    digest = await putBlob(a, data)
    upstream = await startFileUpstream(data)
    await until(() => b.cluster.running?.membership.isMember(a.peerId) === true, 20_000, 'membership')
  }, 60_000)

  afterAll(async () => {
    await b.stop()
    await a.stop()
    await upstream.close()
    await agent.close()
  })

  it('a member pulls a blob over TLS from the holder whose certificate its ticket named', async () => {
    const ticket = await b.cluster.running?.peers.ticket(a.peerId, digest)
    expect(ticket?.base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(ticket?.cert).toMatch(/^[0-9a-f]{64}$/)
    const up = new UpstreamSource({ dispatcher: agent }, { url: new URL(upstream.url) })
    const src = b.cluster.sourceFor({ key: `sha256:${digest}`, sha256: digest, expected: { algorithm: 'sha256', hex: digest } }, up)
    const res = await src.fetch({ start: 0, end: data.length - 1 }, {})
    expect((await readAll(res.body)).equals(data)).toBe(true)
    expect(upstream.bytes).toBe(0)
  })

  it('the port answers nothing in plain HTTP, and without a ticket nothing over TLS either', async () => {
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
