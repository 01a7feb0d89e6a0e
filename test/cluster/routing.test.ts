import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidFromSha256 } from '../../protocol/cid.ts'
import { fetchFromHolder, putBlob, startClusterNode, startKeyedCluster, until, writeKeyFile } from './helpers.ts'
import type { ClusterTestNode, KeyedCluster } from './helpers.ts'
import { URL_FIRST } from '../../node/cluster/swarm-source.ts'

const MiB = 1 << 20

/** The providers of `digest` that `node` finds through the cluster DHT within 3 s (up to `want`). */
async function dhtProviders (node: ClusterTestNode, digest: string, want: string): Promise<string[]> {
  const found: string[] = []
  const libp2p = node.cluster.running?.libp2p
  if (libp2p === undefined) return found
  try {
    for await (const p of libp2p.contentRouting.findProviders(cidFromSha256(digest), { signal: AbortSignal.timeout(3000) })) {
      found.push(p.id.toString())
      if (p.id.toString() === want) break
    }
  } catch {
    // The query ran out of time: what it found so far is the answer.
  }
  return found
}

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

  it('a blob held without a download (a restart with a warm cache) is provided by the sweep of the index', async () => {
    const digest = await putBlob(a, randomBytes(3000))
    // Asked of the DHT alone: a lookup would also ask A directly (C is its member by now).
    expect(await dhtProviders(c, digest, a.peerId)).not.toContain(a.peerId)
    await until(async () => {
      await a.cluster.running?.routing.sweep()
      return (await dhtProviders(c, digest, a.peerId)).includes(a.peerId)
    }, 30_000, 'the swept blob among the DHT providers')
  }, 40_000)

  it('keeps answering query after query, also once it has answered others (each stream is handled once)', async () => {
    const digest = await putBlob(a, randomBytes(1000))
    a.cluster.running?.routing.provide(digest)
    await until(async () => (await dhtProviders(c, digest, a.peerId)).includes(a.peerId), 20_000, 'the record')
    for (let i = 0; i < 10; i++) {
      // The others ask too, so C also handles incoming DHT streams between its own queries.
      await Promise.all([dhtProviders(a, digest, a.peerId), dhtProviders(b, digest, a.peerId)])
      expect(await dhtProviders(c, digest, a.peerId)).toContain(a.peerId)
    }
  }, 90_000)

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
      expect(r.upstreamBytes).toBe(by === 'url' ? Math.min(data.length, URL_FIRST) : 0)
      expect(r.peerBytes).toBe(data.length - r.upstreamBytes)
    }, 30_000)
  }
})

describe('the cluster DHT is for members only', () => {
  let cluster: KeyedCluster | undefined
  let outsider: ClusterTestNode | undefined
  let keyDir: string | undefined

  afterAll(async () => {
    await outsider?.stop()
    await cluster?.stop()
    if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true })
  })

  it('a node with another key finds no provider of a blob the members provide', async () => {
    cluster = await startKeyedCluster(2)
    const [a, b] = cluster.nodes as [ClusterTestNode, ClusterTestNode]
    keyDir = await mkdtemp(join(tmpdir(), 'aimirror-key-'))
    outsider = await startClusterNode({ key_file: await writeKeyFile(keyDir), peers: [a.addr, b.addr] })
    const digest = await putBlob(a, randomBytes(1000))
    a.cluster.running?.routing.provide(digest)
    // A member finds it through the DHT: the record is there.
    await until(async () => (await dhtProviders(b, digest, a.peerId)).includes(a.peerId), 20_000, 'the record')
    expect(await dhtProviders(outsider, digest, a.peerId)).toEqual([])
    expect(outsider.cluster.running?.membership.memberIds()).toEqual([])
  }, 60_000)
})
