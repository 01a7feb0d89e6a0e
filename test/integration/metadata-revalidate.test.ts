import { afterEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startCondaChannel } from '../fixtures/upstreams/conda-channel.ts'
import { startCranRepo } from '../fixtures/upstreams/cran-repo.ts'
import { startFakeHub } from '../fixtures/upstreams/hf-hub.ts'
import { startHfNode } from '../fixtures/upstreams/hf-node.ts'
import { startNpmRegistry } from '../fixtures/upstreams/npm-registry.ts'
import { startPypiIndex } from '../fixtures/upstreams/pypi-index.ts'

/** Every handler that keeps metadata revalidates it upstream when the client asks, and serves stale when it cannot. */

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

async function node (rules: unknown[], extra: Record<string, unknown> = {}): Promise<TestNode> {
  const n = await startTestNode({ ...extra, rules })
  closers.push(async () => await n.stop())
  return n
}

describe('client-requested revalidation through the handlers', () => {
  it('pypi: pip\'s max-age=0 revalidates an index page within its TTL', async () => {
    const pypi = await startPypiIndex({ packages: [{ name: 'tinya', version: '1.0' }] })
    closers.push(async () => await pypi.close())
    const n = await node([{ name: 'pypi-simple', path_prefix: '/simple/', upstream: pypi.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: 600 }],
      { content_rewrite: { targets: [pypi.filesUrl] } })
    const pages = (): number => pypi.seen.filter(s => s.url.startsWith('/simple/tinya')).length
    const first = await send(n.url, { path: '/simple/tinya/' })
    expect(first.status).toBe(200)
    await send(n.url, { path: '/simple/tinya/' })
    expect(pages()).toBe(1)
    const again = await send(n.url, { path: '/simple/tinya/', headers: { 'cache-control': 'max-age=0' } })
    expect(again.status).toBe(200)
    expect(again.body.equals(first.body)).toBe(true)
    expect(pages()).toBe(2)
    pypi.settings.status = 503
    const stale = await send(n.url, { path: '/simple/tinya/', headers: { 'cache-control': 'max-age=0' } })
    expect(stale.status).toBe(200)
    expect(stale.headers.warning).toBe('110 - "Response is Stale"')
    expect(stale.body.equals(first.body)).toBe(true)
  })

  it('npm: a conditional packument request (npm --prefer-online) and no-cache are revalidated', async () => {
    const reg = await startNpmRegistry([{ name: 'tiny-b', version: '1.0.0' }])
    closers.push(async () => await reg.close())
    const n = await node([{ name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: reg.url, handler: 'npm', strategy: 'proxy', metadata_ttl_s: 600 }])
    const docs = (): number => reg.seen.filter(s => !s.url.includes('/-/')).length
    const first = await send(n.url, { path: '/npm/tiny-b' })
    await send(n.url, { path: '/npm/tiny-b' })
    expect(docs()).toBe(1)
    const online = await send(n.url, { path: '/npm/tiny-b', headers: { 'if-none-match': String(first.headers.etag) } })
    expect(online.status).toBe(304)
    expect(docs()).toBe(2)
    await send(n.url, { path: '/npm/tiny-b', headers: { 'cache-control': 'no-cache' } })
    expect(docs()).toBe(3)
    reg.settings.status = 500
    const stale = await send(n.url, { path: '/npm/tiny-b', headers: { 'cache-control': 'no-cache' } })
    expect(stale.status).toBe(200)
    expect(stale.headers['x-aimirror-stale']).toBe('1')
  })

  it('conda: no-cache revalidates repodata', async () => {
    const chan = await startCondaChannel({ channel: 'conda-forge', packages: [{ name: 'tinyd', version: '1.0' }] })
    closers.push(async () => await chan.close())
    const n = await node([{ name: 'conda-forge', path_prefix: '/conda-forge/', strip_prefix: true, upstream: chan.url, handler: 'conda', strategy: 'proxy', metadata_ttl_s: 600 }])
    const gets = (): number => chan.seen.filter(s => s.url.endsWith('/noarch/repodata.json')).length
    await send(n.url, { path: '/conda-forge/noarch/repodata.json' })
    await send(n.url, { path: '/conda-forge/noarch/repodata.json' })
    expect(gets()).toBe(1)
    const again = await send(n.url, { path: '/conda-forge/noarch/repodata.json', headers: { 'cache-control': 'no-cache' } })
    expect(again.status).toBe(200)
    expect(gets()).toBe(2)
  })

  it('cran: no-cache revalidates PACKAGES', async () => {
    const repo = await startCranRepo(new Map([['/src/contrib/PACKAGES', Buffer.from('Package: tinyr\nVersion: 1.0.0\n')]]))
    closers.push(async () => await repo.close())
    const n = await node([{ name: 'cran-src', path_prefix: '/src/contrib/', upstream: repo.url, handler: 'cran', strategy: 'proxy', metadata_ttl_s: 600 }])
    const gets = (): number => repo.seen.filter(s => s.url === '/src/contrib/PACKAGES').length
    await send(n.url, { path: '/src/contrib/PACKAGES' })
    await send(n.url, { path: '/src/contrib/PACKAGES' })
    expect(gets()).toBe(1)
    expect((await send(n.url, { path: '/src/contrib/PACKAGES', headers: { 'cache-control': 'no-cache' } })).status).toBe(200)
    expect(gets()).toBe(2)
  })

  it('hf: no-cache revalidates API JSON', async () => {
    const commit = '1111111111111111111111111111111111111111'
    const hub = await startFakeHub({ repos: [{ id: 'acme/tiny', commits: { [commit]: { 'config.json': { content: '{}' } } }, refs: { main: commit } }] })
    closers.push(async () => await hub.close())
    const n = await startHfNode(hub.url, { rule: { metadata_ttl_s: 600 } })
    closers.push(async () => await n.stop())
    const path = '/api/models/acme/tiny/revision/main'
    const asked = (): number => hub.count(r => r.path.startsWith(path))
    expect((await fetch(n.url + path)).status).toBe(200)
    await (await fetch(n.url + path)).arrayBuffer()
    expect(asked()).toBe(1)
    await (await fetch(n.url + path, { headers: { 'cache-control': 'no-cache' } })).arrayBuffer()
    expect(asked()).toBe(2)
  })
})
