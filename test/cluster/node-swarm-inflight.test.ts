import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatsView } from '../../node/cluster/view.ts'
import type { TestNode } from '../helpers/node.ts'
import { startNodeCluster, until } from './helpers.ts'
import { blobData, sha256Hex } from './lan/blob-data.ts'
import { blobRegistry, registryGet, throttled } from './lan/registry.ts'
import type { BlobRegistry } from './lan/registry.ts'

const MiB = 1 << 20

/**
 * Three nodes in one process ask for the same cold layer at the same moment: they split the upstream
 * units between them and read the rest from each other while it is still downloading.
 */
describe('swarm download: pieces still downloading are shared', () => {
  const data = blobData(16 * MiB + 4321, 7)
  const other = blobData(16 * MiB + 99, 8)
  const third = blobData(16 * MiB + 5, 9)
  let registry: BlobRegistry
  let server: Server
  const nodes: TestNode[] = []

  beforeAll(async () => {
    registry = blobRegistry(data, other, third)
    server = createServer(throttled(registry, 8 * MiB))
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const rules = [
      { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', cache_key_source: 'original', min_size: 0, concurrency: 4, chunk_size: 1 << 20 },
      { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy' }
    ]
    await startNodeCluster(3, { rules, cluster: { enabled: true, lookup_ms: 1000 } }, nodes)
  }, 60_000)

  afterAll(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    server?.closeAllConnections()
    await new Promise<void>(resolve => server?.close(() => resolve()) ?? resolve())
  })

  it('fetches the blob about once from the upstream, every client gets the right bytes', async () => {
    const bodies = await Promise.all(nodes.map(async n => {
      const res = await registryGet(`${n.url}${registry.path}`)
      expect(res.status).toBe(200)
      return Buffer.from(await res.arrayBuffer())
    }))
    for (const b of bodies) expect(sha256Hex(b)).toBe(registry.digest)
    // Alone, each node would take the whole blob from the upstream (3 ×). Each node's first piece is
    // its own (the first byte must not wait), and views of who downloads settle within a moment.
    expect(registry.sent()).toBeLessThan(1.5 * data.length)
    expect(registry.sent()).toBeGreaterThanOrEqual(data.length)

    const view = await (await fetch(`${nodes[0]?.url}/cluster/stats`)).json() as ClusterStatsView
    expect(view.nodes).toHaveLength(3)
    const fromPeers = view.nodes.filter(n => (n.bytes_from_peers ?? 0) > 0)
    expect(fromPeers.length).toBeGreaterThanOrEqual(2)
    // Every node committed the verified blob.
    for (const n of nodes) {
      await until(async () => ((await (await fetch(`${n.url}/stats`)).json()) as { cache: { file_count: number } }).cache.file_count === 1, 20_000, 'commit')
    }
  }, 60_000)

  it('a node that comes late takes what another already has from it, not from the upstream', async () => {
    const [a, , c] = nodes as [TestNode, TestNode, TestNode]
    const path = registry.paths[2] as string
    const before = registry.sent()
    const onA = registryGet(`${a.url}${path}`).then(async res => Buffer.from(await res.arrayBuffer()))
    await until(() => registry.sent() - before > third.length * 3 / 4, 30_000, 'a three quarters through')
    const onC = registryGet(`${c.url}${path}`).then(async res => Buffer.from(await res.arrayBuffer()))
    expect(sha256Hex(await onA)).toBe(path.slice(-64))
    expect(sha256Hex(await onC)).toBe(path.slice(-64))
    // Without a's bitmap and in-flight ranges c would fetch its own units (about half) of the first three
    // quarters again (≥ 1.37 ×); with them c reads those from a.
    expect(registry.sent() - before).toBeLessThan(1.2 * third.length)
  }, 60_000)

  it('a node that dies while others read its download loses them nothing: the rest comes from the upstream', async () => {
    const [, b, c] = nodes as [TestNode, TestNode, TestNode]
    const path = registry.paths[1] as string
    const fromPeers = (): number => c.node.components.cluster?.localStats().bytes_from_peers ?? 0
    const before = fromPeers()
    const sentBefore = registry.sent()
    // b starts first, so c surely has something to read from it (what b has and is fetching).
    const onB = registryGet(`${b.url}${path}`).then(async res => await res.arrayBuffer()).catch(() => null)
    await until(() => registry.sent() - sentBefore > other.length / 4, 30_000, 'b a quarter through')
    const onC = registryGet(`${c.url}${path}`).then(async res => Buffer.from(await res.arrayBuffer()))
    await until(() => fromPeers() > before, 30_000, 'c reading from b')
    await b.node.stop({ deadlineMs: 100 })
    await onB
    expect(sha256Hex(await onC)).toBe(path.slice(-64))
  }, 60_000)
})
