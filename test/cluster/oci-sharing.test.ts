import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatsView } from '../../node/cluster/view.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { RegistryContent } from '../fixtures/upstreams/oci-content.ts'
import { buildImage, sha256 } from '../fixtures/upstreams/oci-image.ts'
import type { BuiltImage } from '../fixtures/upstreams/oci-image.ts'
import { startOciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import type { OciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import { PullClient } from '../integration/oci-helpers.ts'
import { p2pAddr, until } from './helpers.ts'

async function peerBytes (n: TestNode): Promise<number> {
  const view = await (await fetch(`${n.url}/cluster/stats`)).json() as ClusterStatsView
  return view.nodes.find(x => x.self)?.bytes_from_peers ?? 0
}

const USERS = { alice: 'wonderland' }

/**
 * Registry layers in an open cluster of whole nodes: a public layer a logged-in client pulled through
 * one node is shared (the node learnt it is public); a private one is not; and with the registry
 * unreachable, a layer a member holds still reaches an anonymous client of another node.
 */
describe('open cluster: registry layers', () => {
  let reg: OciRegistry
  let pub: BuiltImage
  let other: BuiltImage
  let secret: BuiltImage
  let a: TestNode
  let b: TestNode

  beforeAll(async () => {
    const content = new RegistryContent()
    pub = buildImage({ seed: 'shared-pub', layers: [3 << 20] })
    other = buildImage({ seed: 'shared-other', layers: [2 << 20] })
    secret = buildImage({ seed: 'shared-secret', layers: [2 << 20] })
    content.add('library/pub', '1.0', pub)
    content.add('library/other', '1.0', other)
    content.add('alice/secret', '1.0', secret)
    reg = await startOciRegistry({ content, auth: { users: USERS, private: { 'alice/secret': ['alice'] } } })
    const rules = [
      { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream: reg.url, handler: 'oci', strategy: 'parallel', min_size: 0, concurrency: 4 },
      { name: 'oci-registry', path_prefix: '/v2/', upstream: reg.url, handler: 'oci', strategy: 'proxy' }
    ]
    const oci = { registries: { 'docker.io': reg.url } }
    a = await startTestNode({ rules, oci, cluster: { enabled: true, lookup_ms: 1000 } })
    b = await startTestNode({ rules, oci, cluster: { enabled: true, lookup_ms: 1000, peers: [p2pAddr(a)] } })
    await until(async () => (await (await fetch(`${b.url}/cluster/stats`)).json() as ClusterStatsView).totals.reachable === 2, 20_000, 'two reachable nodes')
  }, 60_000)

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await reg?.close()
  })

  it('a logged-in client\'s public layer is shared; a private one is not', async () => {
    const alice = new PullClient(a.url, { user: 'alice', password: USERS.alice })
    const layer = pub.amd64Layers[0] as string
    expect(sha256((await alice.get(`/v2/library/pub/blobs/${layer}`)).body)).toBe(layer)
    const before = await peerBytes(b)
    expect(sha256((await new PullClient(b.url).get(`/v2/library/pub/blobs/${layer}`)).body)).toBe(layer)
    expect(await peerBytes(b)).toBeGreaterThanOrEqual(before + (pub.blobs.get(layer)?.length ?? 0))

    const hidden = secret.amd64Layers[0] as string
    expect(sha256((await alice.get(`/v2/alice/secret/blobs/${hidden}`)).body)).toBe(hidden)
    const alsoAlice = new PullClient(b.url, { user: 'alice', password: USERS.alice })
    const peersBefore = await peerBytes(b)
    expect(sha256((await alsoAlice.get(`/v2/alice/secret/blobs/${hidden}`)).body)).toBe(hidden)
    expect(await peerBytes(b)).toBe(peersBefore)
  }, 60_000)

  it('with the registry unreachable, a layer a member holds reaches an anonymous client of another node', async () => {
    const layer = other.amd64Layers[0] as string
    const anonA = new PullClient(a.url)
    expect(sha256((await anonA.get(`/v2/library/other/blobs/${layer}`)).body)).toBe(layer)
    const anonB = new PullClient(b.url)
    // b's client has its token before the registry goes (a pull asks for the manifest first).
    await anonB.get('/v2/library/other/manifests/1.0')
    await reg.close()
    const got = await anonB.get(`/v2/library/other/blobs/${layer}`)
    expect(got.status).toBe(200)
    expect(sha256(got.body)).toBe(layer)
  }, 60_000)
})
