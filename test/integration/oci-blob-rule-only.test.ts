import { createHash } from 'node:crypto'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { RegistryContent } from '../fixtures/upstreams/oci-content.ts'
import { buildImage } from '../fixtures/upstreams/oci-image.ts'
import type { BuiltImage } from '../fixtures/upstreams/oci-image.ts'
import { startOciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import type { OciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import { PullClient } from './oci-helpers.ts'

let hub: OciRegistry
let node: TestNode
let image: BuiltImage

beforeAll(async () => {
  const content = new RegistryContent()
  image = buildImage({ seed: 'only-blobs', layers: [40_000] })
  content.add('library/only', '1.0', image)
  hub = await startOciRegistry({ content })
  // Only the blob rule: no rule covers /v2/token, the realm its own challenges name.
  node = await startTestNode({
    rules: [{ name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream: hub.url, handler: 'oci', strategy: 'parallel', min_size: 0 }],
    oci: { registries: { 'docker.io': hub.url } }
  })
})

afterAll(async () => {
  await node?.stop()
  await hub?.close()
})

it('a config with a registry blob rule alone serves the token realm its challenges point at', async () => {
  const client = new PullClient(node.url)
  const layer = image.amd64Layers[0] as string
  const res = await client.get(`/v2/library/only/blobs/${layer}`)
  expect(client.tokenRequests).toBe(1)
  expect(res.status).toBe(200)
  expect('sha256:' + createHash('sha256').update(res.body).digest('hex')).toBe(layer)
})

it('other paths outside every rule still get 404 with the reason', async () => {
  const res = await fetch(`${node.url}/v2/tokens`)
  expect(res.status).toBe(404)
  expect(((await res.json()) as { error: string }).error).toBe('ERR_NO_ROUTE')
})
