import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import type { UpstreamRequest } from '../../node/fetch/acquire-types.ts'
import { startClusterNode, startFileUpstream, until } from './helpers.ts'
import type { ClusterTestNode, CountingUpstream } from './helpers.ts'
import { blobData } from './lan/blob-data.ts'

const MiB = 1 << 20

async function fetchWith (node: ClusterTestNode, hex: string, upstream: UpstreamRequest): Promise<string> {
  const got = await node.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex }), upstream, { chunkSize: MiB, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
  try {
    const hash = createHash('sha256')
    for await (const chunk of got.open(0, got.meta.size as number)) hash.update(chunk as Buffer)
    return hash.digest('hex')
  } finally {
    got.release()
  }
}

/**
 * A blob fetched with a client's credentials (its headers, or a registry credential the node holds for
 * it) is that client's: no member gets a ticket for it, nor its download in flight, until a client
 * without credentials was let have it by the upstream.
 */
describe('blobs fetched with credentials, in an open cluster', () => {
  let a: ClusterTestNode
  let b: ClusterTestNode
  const upstreams: CountingUpstream[] = []

  beforeAll(async () => {
    a = await startClusterNode()
    b = await startClusterNode({ peers: [a.addr] })
    await until(() => b.cluster.running?.membership.memberIds().length === 1, 20_000, 'membership')
  }, 60_000)

  afterAll(async () => {
    await b?.stop()
    await a?.stop()
    for (const u of upstreams) await u.close()
  })

  const cases: Array<[string, (url: URL) => UpstreamRequest]> = [
    ['an Authorization header', url => ({ url, headers: { authorization: 'Bearer alice' } })],
    ['a registry credential the node holds for the client', url => ({ url, credential: 'alice-key' })]
  ]
  for (const [i, [what, request]] of cases.entries()) {
    it(`with ${what}: no ticket for a member until an anonymous client was let have it`, async () => {
      const data = blobData(2 * MiB + 7, 90 + i)
      const hex = createHash('sha256').update(data).digest('hex')
      const upstream = await startFileUpstream(data)
      upstreams.push(upstream)
      const url = new URL(upstream.url)
      expect(await fetchWith(a, hex, request(url))).toBe(hex)
      await until(async () => await a.store.hasDigest(hex), 20_000, 'commit')
      const peers = b.cluster.running?.peers
      if (peers === undefined) throw new Error('no cluster')
      await expect(peers.ticket(a.peerId, hex)).rejects.toThrow()
      // An anonymous client of a: the upstream lets it have the file, so anyone may.
      expect(await fetchWith(a, hex, { url })).toBe(hex)
      expect((await peers.ticket(a.peerId, hex)).size).toBe(data.length)
    }, 60_000)
  }
})
