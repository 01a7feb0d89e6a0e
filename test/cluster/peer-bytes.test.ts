import type { Server } from 'node:http'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { TestNode } from '../helpers/node.ts'
import { startNodeCluster, until } from './helpers.ts'
import { blobData, sha256Hex } from './lan/blob-data.ts'
import { blobRegistry, registryGet, serveRegistry } from './lan/registry.ts'
import type { BlobRegistry } from './lan/registry.ts'

/**
 * A blob whose pieces (the rule's chunk_size 0: size / concurrency) do not fall on the 1 MiB units
 * a holder verifies and sends: each range must still ask for every unit once.
 */
const data = blobData(25_000_000, 42)
let registry: BlobRegistry
let server: Server
let a: TestNode
let b: TestNode
beforeAll(async () => {
  registry = blobRegistry(data)
  let rules: Array<Record<string, unknown>>
  ;({ server, rules } = await serveRegistry(registry, { chunk_size: 0 }))
  ;[a, b] = await startNodeCluster(2, { rules, cluster: { lookup_ms: 200 } }) as [TestNode, TestNode]
}, 60_000)
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()])
  server?.closeAllConnections()
  server?.close()
})

it('a blob read from the member that holds it crosses the LAN once: every unit asked for once', async () => {
  const first = await registryGet(`${a.url}${registry.path}`)
  expect(sha256Hex(Buffer.from(await first.arrayBuffer()))).toBe(registry.digest)
  await until(async () => ((await (await fetch(`${a.url}/stats`)).json()) as { cache: { file_count: number } }).cache.file_count === 1, 20_000, 'commit')
  const second = await registryGet(`${b.url}${registry.path}`)
  expect(sha256Hex(Buffer.from(await second.arrayBuffer()))).toBe(registry.digest)
  const sent = (): number => a.node.components.cluster?.localStats().bytes_to_peers ?? 0
  await until(() => sent() >= data.length, 10_000, 'bytes counted')
  // Ranges that each ended inside a unit had both neighbours ask for it: 13 MiB more than the blob. At
  // most one unit now: the tail of the first range, cut for another connection while its bytes were
  // already in the socket's buffers (the node busy starting the download).
  expect(sent()).toBeGreaterThanOrEqual(data.length)
  expect(sent()).toBeLessThanOrEqual(data.length + (1 << 20))
  expect(b.node.components.cluster?.localStats()).toMatchObject({ bytes_from_peers: data.length, bytes_from_upstream: 0 })
}, 60_000)
