import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { fetchBlob, fetchFromHolder, startFileUpstream, startKeyedCluster } from './helpers.ts'
import type { ClusterTestNode, KeyedCluster } from './helpers.ts'
import { URL_FIRST } from '../../node/cluster/swarm-source.ts'

const MiB = 1 << 20
const U = MiB

describe('keyed cluster: blobs of every awkward size reach a member from a holder, by digest and by URL', () => {
  let a: ClusterTestNode
  let b: ClusterTestNode
  let cluster: KeyedCluster | undefined

  beforeAll(async () => {
    cluster = await startKeyedCluster(2, { lookup_ms: 5000 })
    ;[a, b] = cluster.nodes as [ClusterTestNode, ClusterTestNode]
  }, 60_000)

  afterAll(async () => { await cluster?.stop() })

  const sizes = [0, 1, 65_537, U - 1, U, U + 1, 2 * U, 3 * U - 7]
  for (const [size, by] of [...sizes.map(s => [s, 'digest'] as const), ...sizes.map(s => [s, 'url'] as const)]) {
    it(`${size} bytes, named by ${by}`, async () => {
      const data = randomBytes(size)
      const r = await fetchFromHolder(a, b, data, by)
      expect(r.got.equals(data)).toBe(true)
      // A URL's first range comes from the upstream: it tells which version the URL names now.
      expect(r.upstreamBytes).toBe(by === 'url' ? Math.min(size, URL_FIRST) : 0)
      expect(r.peerBytes).toBe(size - r.upstreamBytes)
    }, 30_000)
  }

  for (const size of sizes) {
    it(`${size} bytes, asked by both at once by URL: right bytes on both`, async () => {
      const data = randomBytes(size)
      const upstream = await startFileUpstream(data)
      try {
        const identity = urlIdentity(upstream.url)
        const [onA, onB] = await Promise.all([fetchBlob(a.fetcher, identity, upstream.url), fetchBlob(b.fetcher, identity, upstream.url)])
        expect(onA.equals(data)).toBe(true)
        expect(onB.equals(data)).toBe(true)
        expect(upstream.bytes).toBeLessThanOrEqual(2 * size)
      } finally {
        await upstream.close()
      }
    }, 30_000)
  }
})
