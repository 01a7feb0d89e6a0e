import { existsSync } from 'node:fs'
import type { Server } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatsView } from '../../node/cluster/view.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { until } from './helpers.ts'
import { blobData, sha256Hex } from './lan/blob-data.ts'
import { blobRegistry, registryGet, serveRegistry } from './lan/registry.ts'
import type { BlobRegistry } from './lan/registry.ts'

/** Two nodes in one process, registry on 127.0.0.1: the second node pulls a layer the first has, from it. */
describe('swarm download through the node', () => {
  const data = blobData(5 * (1 << 20) + 77, 42)
  let registry: BlobRegistry
  let server: Server
  let a: TestNode
  let b: TestNode

  beforeAll(async () => {
    registry = blobRegistry(data)
    let rules: Array<Record<string, unknown>>
    ;({ server, rules } = await serveRegistry(registry, { cache_key_source: 'original', concurrency: 4, chunk_size: 1 << 20 }))
    a = await startTestNode({ rules, cluster: { enabled: true } })
    const addr = a.node.components.cluster?.running?.libp2p.getMultiaddrs().map(String).find(x => x.startsWith('/ip4/127.0.0.1/')) as string
    b = await startTestNode({ rules, cluster: { enabled: true, peers: [addr], lookup_ms: 1000 } })
    await until(() => b.node.components.cluster?.running?.membership.memberIds().length === 1, 20_000, 'membership')
  }, 60_000)

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    server?.closeAllConnections()
    await new Promise<void>(resolve => server?.close(() => resolve()) ?? resolve())
  })

  it('a layer one node pulled reaches the other from its peer, verified, with no upstream bytes', async () => {
    const first = await registryGet(`${a.url}${registry.path}`)
    expect(first.status).toBe(200)
    expect(sha256Hex(Buffer.from(await first.arrayBuffer()))).toBe(registry.digest)
    const sent = registry.sent()
    expect(sent).toBe(data.length)
    // The last byte is released once verified; the commit follows a moment later.
    await until(async () => ((await (await fetch(`${a.url}/stats`)).json()) as { cache: { file_count: number } }).cache.file_count === 1, 20_000, 'commit on a')
    // Its piece list is made once it is committed, before any peer asks (no wait on the first ticket).
    await until(() => existsSync(join(a.cacheDir, 'cluster', 'pieces', registry.digest)), 20_000, 'piece list on a')

    const second = await registryGet(`${b.url}${registry.path}`)
    expect(second.status).toBe(200)
    expect(sha256Hex(Buffer.from(await second.arrayBuffer()))).toBe(registry.digest)
    expect(registry.sent()).toBe(sent)

    const view = await (await fetch(`${b.url}/cluster/stats`)).json() as ClusterStatsView
    expect(view.nodes.find(n => n.self)).toMatchObject({ bytes_from_peers: data.length, bytes_from_upstream: 0 })
    // The node's own /stats says the same: peers' bytes are not the upstream's.
    const own = await (await fetch(`${b.url}/stats`)).json() as { cache: { bytes_from_upstream: number, bytes_from_peers: number } }
    expect(own.cache).toMatchObject({ bytes_from_peers: data.length, bytes_from_upstream: 0 })
    // Ranges are widened to whole verification units, so the LAN may carry more than the blob.
    expect(view.totals.bytes_to_peers).toBeGreaterThanOrEqual(data.length)
    // Once committed on b, a third request is a local hit.
    await until(async () => ((await (await fetch(`${b.url}/stats`)).json()) as { cache: { file_count: number } }).cache.file_count === 1, 20_000, 'commit on b')
    const third = await registryGet(`${b.url}${registry.path}`)
    await third.arrayBuffer()
    // Counters are updated when the response finishes on the node's side: poll for them.
    await until(async () => ((await (await fetch(`${b.url}/cluster/stats`)).json()) as ClusterStatsView).nodes.find(n => n.self)?.bytes_from_cache === data.length, 20_000, 'hit counted on b')
  })
})
