import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestNode } from '../helpers/node.ts'
import { startNodeCluster } from './helpers.ts'
import { blobData, sha256Hex } from './lan/blob-data.ts'
import { blobRegistry, registryGet, throttled } from './lan/registry.ts'
import type { BlobRegistry } from './lan/registry.ts'

const MiB = 1 << 20

/**
 * An upstream that throttles each connection (a corporate proxy): a download is as fast as the
 * connections it keeps busy. Three nodes sharing a small blob split it into units, and each unit's
 * owner must still spread its unit over many connections.
 */
describe('swarm download from an upstream that throttles each connection', () => {
  const alone = blobData(8 * MiB, 21)
  const shared = blobData(8 * MiB, 22)
  let registry: BlobRegistry
  let server: Server
  const nodes: TestNode[] = []

  beforeAll(async () => {
    registry = blobRegistry(alone, shared)
    server = createServer(throttled(registry, 256 << 10))
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    // The rule as users write it: the engine picks pieces and connections.
    const rules = [
      { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', cache_key_source: 'original' },
      { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy' }
    ]
    await startNodeCluster(3, { rules, cluster: { enabled: true } }, nodes)
  }, 60_000)

  afterAll(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    server?.closeAllConnections()
    await new Promise<void>(resolve => server?.close(() => resolve()) ?? resolve())
  })

  const timedGet = async (node: TestNode, path: string): Promise<number> => {
    const t0 = performance.now()
    const res = await registryGet(`${node.url}${path}`)
    expect(res.status).toBe(200)
    expect(sha256Hex(Buffer.from(await res.arrayBuffer()))).toBe(path.slice(-64))
    return performance.now() - t0
  }

  it('three nodes on one small blob at once each finish about as soon as one node alone', async () => {
    const [a] = nodes as [TestNode]
    const aloneMs = await timedGet(a, registry.paths[0] as string)
    const before = registry.sent()
    const times = await Promise.all(nodes.map(async n => await timedGet(n, registry.paths[1] as string)))
    // Each 4 MiB unit's owner kept its unit on 1 MiB ranges, 4 connections at 256 KiB/s: every node
    // took twice as long as one alone.
    expect(Math.max(...times)).toBeLessThan(1.5 * aloneMs)
    expect(registry.sent() - before).toBeLessThan(1.3 * shared.length)
  }, 60_000)
})
