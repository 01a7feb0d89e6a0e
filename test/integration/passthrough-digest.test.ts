import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { blobData, sha256Hex } from '../cluster/lan/blob-data.ts'
import { blobPathOf, blobRegistry, registryGet } from '../cluster/lan/registry.ts'

const MiB = 1 << 20

/**
 * A layer larger than the node's whole cache is passed through uncached, with no download to check it:
 * the stream itself checks the digest and holds its last bytes back until it matched.
 */
describe('a blob passed through (larger than the cache) against its digest', () => {
  const good = blobData(3 * MiB + 5, 61)
  const goodDigest = sha256Hex(good)
  // A second layer, whose registry serves a corrupted copy under its digest.
  const other = blobData(3 * MiB + 9, 62)
  const otherDigest = sha256Hex(other)
  const registry = blobRegistry(good)
  let server: Server
  let node: TestNode

  beforeAll(async () => {
    const wrong = blobRegistry(other, Buffer.from(other).fill(7, 2 * MiB, 2 * MiB + 3))
    const wrongPath = wrong.paths[1] as string
    server = createServer((req, res) => {
      // The second layer's path answered with its corrupted copy.
      if (req.url === blobPathOf(otherDigest)) { req.url = wrongPath; wrong.handle(req, res); return }
      registry.handle(req, res)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    node = await startTestNode({
      cache: { max_size_gb: 0.001, min_free_gb: 0 },
      rules: [
        { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', min_size: 0, concurrency: 4, chunk_size: MiB },
        { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy' }
      ]
    })
  }, 30_000)

  afterAll(async () => {
    await node?.stop()
    server?.closeAllConnections()
    await new Promise<void>(resolve => server?.close(() => resolve()) ?? resolve())
  })

  it('right bytes: a complete 200', async () => {
    const res = await registryGet(`${node.url}${blobPathOf(goodDigest)}`)
    expect(res.status).toBe(200)
    expect(sha256Hex(Buffer.from(await res.arrayBuffer()))).toBe(goodDigest)
    // Nothing was cached: it was passed through.
    const stats = await (await fetch(`${node.url}/stats`)).json() as { cache: { file_count: number } }
    expect(stats.cache.file_count).toBe(0)
  })

  it('wrong bytes under the right digest: never a complete response', async () => {
    const res = await registryGet(`${node.url}${blobPathOf(otherDigest)}`)
    const complete = res.status === 200 && await res.arrayBuffer().then(() => true, () => false)
    expect(complete).toBe(false)
  })
})
