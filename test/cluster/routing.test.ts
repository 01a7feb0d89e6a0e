import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { putBlob, startClusterNode, until } from './helpers.ts'
import type { ClusterTestNode } from './helpers.ts'

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
