import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchFromHolder, putBlob, startClusterNode, startKeyedCluster, until } from './helpers.ts'
import type { ClusterTestNode, KeyedCluster } from './helpers.ts'

const MiB = 1 << 20

/** A — B — C by static peers only: C finds A's blob through the cluster DHT, then joins A directly. */
describe('content routing through the cluster DHT', () => {
  let a: ClusterTestNode
  let b: ClusterTestNode
  let c: ClusterTestNode

  beforeAll(async () => {
    b = await startClusterNode()
    a = await startClusterNode({ peers: [b.addr] })
    c = await startClusterNode({ peers: [b.addr] })
    const ids = (n: ClusterTestNode): string[] => n.cluster.running?.membership.memberIds() ?? []
    await until(() => ids(b).length === 2 && ids(a).includes(b.peerId) && ids(c).includes(b.peerId), 20_000, 'chain')
  }, 60_000)

  afterAll(async () => {
    await Promise.all([a, b, c].map(async n => await n?.stop()))
  })

  it('finds a holder that is not a direct member', async () => {
    const digest = await putBlob(a, randomBytes(2000))
    // The record lands on the DHT servers closest to the CID: here B (and A itself).
    await until(async () => {
      a.cluster.running?.routing.provide(digest)
      const holders = await c.cluster.running?.routing.lookup(digest, { budgetMs: 3000 })
      return holders?.some(h => h.peer === a.peerId && h.answer.state === 'complete') === true
    }, 30_000, 'a holder through the DHT')
    expect(c.cluster.running?.membership.isMember(a.peerId)).toBe(true)
  }, 40_000)

  it('a digest nobody holds settles with no holder, well inside the budget', async () => {
    const started = Date.now()
    const holders = await c.cluster.running?.routing.lookup('ab'.repeat(32), { budgetMs: 5000 })
    expect(holders).toEqual([])
    expect(Date.now() - started).toBeLessThan(4000)
  })
})

describe('the same shape in a keyed cluster (A ← B ← C by static peers): C fetches what only A holds', () => {
  let a: ClusterTestNode
  let b: ClusterTestNode
  let c: ClusterTestNode
  let cluster: KeyedCluster | undefined

  beforeAll(async () => {
    cluster = await startKeyedCluster(3, { lookup_ms: 3000 })
    ;[a, b, c] = cluster.nodes as [ClusterTestNode, ClusterTestNode, ClusterTestNode]
    expect(c.cluster.running?.membership.isMember(b.peerId)).toBe(true)
  }, 60_000)

  afterAll(async () => { await cluster?.stop() })

  it('C learns A through B and becomes its member (no static peer names A)', async () => {
    await until(() => c.cluster.running?.membership.isMember(a.peerId) === true, 20_000, 'C a member of A')
    // Each side records the other when its half of the handshake ends.
    await until(() => a.cluster.running?.membership.isMember(c.peerId) === true, 20_000, 'A a member of C')
  }, 30_000)

  for (const by of ['digest', 'url'] as const) {
    it(`a blob only A holds reaches C from A (a URL's first range from the upstream), named by ${by}`, async () => {
      const data = randomBytes(3 * MiB + 5)
      const r = await fetchFromHolder(a, c, data, by)
      expect(r.got.equals(data)).toBe(true)
      // A URL's first range comes from the upstream: it tells which version the URL names now.
      expect(r.upstreamBytes).toBe(by === 'url' ? Math.min(data.length, 128 << 10) : 0)
      expect(r.peerBytes).toBe(data.length - r.upstreamBytes)
    }, 30_000)
  }
})
