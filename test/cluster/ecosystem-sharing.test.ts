import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatsView } from '../../node/cluster/view.ts'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startNpmRegistry } from '../fixtures/upstreams/npm-registry.ts'
import type { NpmRegistry } from '../fixtures/upstreams/npm-registry.ts'
import { startPypiIndex } from '../fixtures/upstreams/pypi-index.ts'
import type { PypiIndex } from '../fixtures/upstreams/pypi-index.ts'
import { p2pAddr, until } from './helpers.ts'

async function selfStats (n: TestNode): Promise<ClusterStatsView['nodes'][number]> {
  const view = await (await fetch(`${n.url}/cluster/stats`)).json() as ClusterStatsView
  const self = view.nodes.find(x => x.self)
  if (self === undefined) throw new Error('no self in /cluster/stats')
  return self
}

/**
 * An open cluster (no key) of whole nodes: an artifact whose digest its ecosystem publishes, fetched
 * through one node, reaches another from it, not from the upstream.
 */
describe('open cluster: ecosystem artifacts are shared between nodes', () => {
  let pypi: PypiIndex
  let npm: NpmRegistry
  let a: TestNode
  let b: TestNode
  const rules = (): Array<Record<string, unknown>> => [
    { name: 'pypi-files', path_prefix: '/packages/', upstream: pypi.filesUrl, handler: 'pypi', strategy: 'parallel', min_size: 0, concurrency: 4 },
    { name: 'pypi-simple', path_prefix: '/simple/', upstream: pypi.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: 600 },
    { name: 'npm-tarballs', path_prefix: '/npm/', pattern: '/-/[^/]+\\.tgz$', strip_prefix: true, upstream: npm.url, handler: 'npm', strategy: 'parallel' },
    { name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: npm.url, handler: 'npm', strategy: 'proxy', metadata_ttl_s: 300 }
  ]

  beforeAll(async () => {
    pypi = await startPypiIndex({ packages: [{ name: 'sharedpkg', version: '1.0', padBytes: 3 << 20 }] })
    npm = await startNpmRegistry([{ name: 'shared-js', version: '2.0.0', padBytes: 2 << 20 }])
    // A generous lookup budget: the full suite keeps both cores busy, and a member's answer can take
    // longer than the default 50 ms; past the budget a node rightly goes upstream, and this asks whether
    // the artifacts are shared at all (the budget itself: test/unit/cluster/lookup.test.ts, routing.test.ts).
    a = await startTestNode({ content_rewrite: { targets: [pypi.filesUrl] }, rules: rules(), cluster: { enabled: true, lookup_ms: 1000 } })
    b = await startTestNode({ content_rewrite: { targets: [pypi.filesUrl] }, rules: rules(), cluster: { enabled: true, lookup_ms: 1000, peers: [p2pAddr(a)] } })
    await until(async () => (await (await fetch(`${b.url}/cluster/stats`)).json() as ClusterStatsView).totals.reachable === 2, 20_000, 'two reachable nodes')
  }, 60_000)

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await pypi?.close()
    await npm?.close()
  })

  /** GET through `n`, 200 expected. */
  const ok = async (n: TestNode, path: string, headers: Record<string, string> = {}): Promise<Buffer> => {
    const res = await send(n.url, { path, headers })
    expect(res.status).toBe(200)
    return res.body
  }

  /** `get` through a, then through b: b has the artifact from a, and the upstream is not asked for it again. */
  const expectShared = async (get: (n: TestNode) => Promise<Buffer>, data: Buffer, artifactRequests: () => number): Promise<void> => {
    const before = (await selfStats(b)).bytes_from_peers ?? 0
    const held = (await selfStats(a)).cache?.blobs ?? 0
    expect(await get(a)).toEqual(data)
    await until(async () => (await selfStats(a)).cache?.blobs === held + 1, 20_000, 'cached on a')
    const asked = artifactRequests()
    expect(await get(b)).toEqual(data)
    expect(artifactRequests()).toBe(asked)
    expect((await selfStats(b)).bytes_from_peers ?? 0).toBeGreaterThanOrEqual(before + data.length)
  }

  it('a wheel pip got through one node comes to the next from it', async () => {
    const wheel = pypi.wheels.get('sharedpkg-1.0-py3-none-any.whl')
    if (wheel === undefined) throw new Error('no wheel')
    await expectShared(async (n) => {
      const page = await ok(n, '/simple/sharedpkg/', { accept: 'text/html' })
      const href = /href="([^"#]+)#sha256=/.exec(page.toString())?.[1]
      if (href === undefined) throw new Error('no file link')
      return await ok(n, href)
    }, wheel.data, () => pypi.seen.filter(s => s.listener === 'files').length)
  }, 60_000)

  it('an npm tarball (named by its sha512 integrity) got through one node comes to the next from it', async () => {
    const tarball = npm.tarballs.get('shared-js@2.0.0')
    if (tarball === undefined) throw new Error('no tarball')
    await expectShared(async (n) => {
      const doc = await ok(n, '/npm/shared-js', { accept: 'application/vnd.npm.install-v1+json' })
      const dist = (JSON.parse(doc.toString()) as { versions: Record<string, { dist: { tarball: string, integrity: string } }> }).versions['2.0.0']?.dist
      expect(dist?.integrity).toBe(tarball.integrity)
      return await ok(n, new URL(dist?.tarball ?? '').pathname)
    }, tarball.data, () => npm.seen.filter(s => s.url.includes('/-/')).length)
  }, 60_000)
})
