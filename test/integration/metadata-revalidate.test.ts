import { afterEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startCondaChannel } from '../fixtures/upstreams/conda-channel.ts'
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
})
