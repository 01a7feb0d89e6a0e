import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { json, send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import { until } from './fetch-helpers.ts'
import type { TestNode } from '../helpers/node.ts'
import { startNpmRegistry } from '../fixtures/upstreams/npm-registry.ts'
import type { NpmRegistry } from '../fixtures/upstreams/npm-registry.ts'

const CORGI_ACCEPT = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'

let reg: NpmRegistry
let node: TestNode

function npmRules (upstream: string, ttl = 300): unknown[] {
  return [
    { name: 'npm-tarballs-root', pattern: '^/(?:@[\\w.-]+/)?[\\w.-]+/-/[^/]+\\.tgz$', upstream, handler: 'npm', strategy: 'parallel' },
    { name: 'npm-tarballs', path_prefix: '/npm/', pattern: '/-/[^/]+\\.tgz$', strip_prefix: true, upstream, handler: 'npm', strategy: 'parallel' },
    { name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream, handler: 'npm', strategy: 'proxy', metadata_ttl_s: ttl }
  ]
}

beforeEach(async () => {
  reg = await startNpmRegistry([
    { name: 'tiny-a', version: '1.0.0', dependencies: { 'tiny-b': '^1.0.0' } },
    { name: 'tiny-b', version: '1.0.0' },
    { name: '@acme/tiny-c', version: '2.0.0', padBytes: 20_000 }
  ])
  node = await startTestNode({ rules: npmRules(reg.url) })
})
afterEach(async () => {
  await node.stop()
  await reg.close()
})

type Packument = { versions: Record<string, { dist: { tarball: string, integrity?: string, shasum: string }, description?: string }> }
const docRequests = (): number => reg.seen.filter(s => !s.url.includes('/-/')).length

describe('npm packuments', () => {
  it('serves both representations, cached separately, with tarballs on the mirror under the prefix', async () => {
    const corgi = await send(node.url, { path: '/npm/tiny-a', headers: { accept: CORGI_ACCEPT } })
    expect(corgi.status).toBe(200)
    expect(corgi.headers['content-type']).toBe('application/vnd.npm.install-v1+json; charset=utf-8')
    expect(corgi.headers.vary).toContain('Accept')
    const c = json(corgi) as Packument
    const t = reg.tarballs.get('tiny-a@1.0.0')
    expect(c.versions['1.0.0']?.dist.tarball).toBe(`${node.url}/npm/tiny-a/-/tiny-a-1.0.0.tgz`)
    expect(c.versions['1.0.0']?.dist.integrity).toBe(t?.integrity)
    expect(c.versions['1.0.0']?.description).toBeUndefined()
    const full = await send(node.url, { path: '/npm/tiny-a', headers: { accept: 'application/json' } })
    expect(full.headers['content-type']).toBe('application/json; charset=utf-8')
    expect((json(full) as Packument).versions['1.0.0']?.description).toBe('the tiny-a package')
    expect(full.body.toString('utf8')).toContain('é é')
    await send(node.url, { path: '/npm/tiny-a', headers: { accept: CORGI_ACCEPT } })
    await send(node.url, { path: '/npm/tiny-a' })
    expect(docRequests()).toBe(2)
    const again = await send(node.url, { path: '/npm/tiny-a', headers: { accept: CORGI_ACCEPT, 'if-none-match': String(corgi.headers.etag) } })
    expect(again.status).toBe(304)
  })

  it('treats @scope%2fname and @scope/name as one package', async () => {
    const a = await send(node.url, { path: '/npm/@acme%2ftiny-c', headers: { accept: CORGI_ACCEPT } })
    const b = await send(node.url, { path: '/npm/@acme/tiny-c', headers: { accept: CORGI_ACCEPT } })
    expect(a.status).toBe(200)
    expect(b.body.equals(a.body)).toBe(true)
    expect(docRequests()).toBe(1)
    const tarball = (json(a) as Packument).versions['2.0.0']?.dist.tarball ?? ''
    expect(tarball).toBe(`${node.url}/npm/@acme/tiny-c/-/tiny-c-2.0.0.tgz`)
    const file = await send(node.url, { path: new URL(tarball).pathname })
    expect(file.status).toBe(200)
    expect(file.body.equals(reg.tarballs.get('@acme/tiny-c@2.0.0')?.data ?? Buffer.alloc(0))).toBe(true)
  })

  it('replays stale packuments while the registry fails; a real 404 stays a 404', async () => {
    const short = await startTestNode({ rules: npmRules(reg.url, 0) })
    try {
      expect((await send(short.url, { path: '/npm/nope' })).status).toBe(404)
      const ok = await send(short.url, { path: '/npm/tiny-b' })
      reg.settings.status = 500
      const stale = await send(short.url, { path: '/npm/tiny-b' })
      expect(stale.status).toBe(200)
      expect(stale.headers['x-aimirror-stale']).toBe('1')
      expect(stale.body.equals(ok.body)).toBe(true)
      expect((await send(short.url, { path: '/npm/nope' })).status).toBe(404)
      // Only the full document cached (`npm view`): an install's abbreviated ask takes it (npm accepts
      // application/json); a full ask never gets the abbreviated one.
      const install = await send(short.url, { path: '/npm/tiny-b', headers: { accept: CORGI_ACCEPT } })
      expect(install.status).toBe(200)
      expect(install.headers['x-aimirror-stale']).toBe('1')
      expect(install.body.equals(ok.body)).toBe(true)
      reg.settings.status = null
      await send(short.url, { path: '/npm/tiny-a', headers: { accept: CORGI_ACCEPT } })
      reg.settings.status = 500
      expect((await send(short.url, { path: '/npm/tiny-a', headers: { accept: 'application/json' } })).status).toBe(500)
    } finally {
      await short.stop()
    }
  })
})

describe('npm tarballs', () => {
  it('verifies tarballs by dist.integrity, under the prefix and at the root (pacote rehosting)', async () => {
    await send(node.url, { path: '/npm/tiny-a', headers: { accept: CORGI_ACCEPT } })
    await send(node.url, { path: '/npm/tiny-b', headers: { accept: CORGI_ACCEPT } })
    const a = await send(node.url, { path: '/tiny-a/-/tiny-a-1.0.0.tgz' })
    expect(a.status).toBe(200)
    expect(a.body.equals(reg.tarballs.get('tiny-a@1.0.0')?.data ?? Buffer.alloc(0))).toBe(true)
    reg.corrupt('tiny-b', '1.0.0')
    const bad = await send(node.url, { path: '/npm/tiny-b/-/tiny-b-1.0.0.tgz' }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(bad instanceof Error)) expect(bad.status).not.toBe(200)
    const missing = await send(node.url, { path: '/npm/tiny-b/-/tiny-b-9.9.9.tgz' })
    expect(missing.status).toBe(404)
  })

  it('verifies tarballs with only a sha1 shasum by it', async () => {
    reg.settings.shasumOnly = true
    await send(node.url, { path: '/npm/tiny-b' })
    await send(node.url, { path: '/npm/tiny-a' })
    const b = await send(node.url, { path: '/npm/tiny-b/-/tiny-b-1.0.0.tgz' })
    expect(b.status).toBe(200)
    expect(b.body.equals(reg.tarballs.get('tiny-b@1.0.0')?.data ?? Buffer.alloc(0))).toBe(true)
    reg.corrupt('tiny-a', '1.0.0')
    const bad = await send(node.url, { path: '/npm/tiny-a/-/tiny-a-1.0.0.tgz' }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(bad instanceof Error)) expect(bad.status).not.toBe(200)
  })

  it('a tarball asked for before its packument (a lockfile install) is verified too: the packument is read first', async () => {
    reg.corrupt('tiny-b', '1.0.0')
    const bad = await send(node.url, { path: '/npm/tiny-b/-/tiny-b-1.0.0.tgz' }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(bad instanceof Error)) expect(bad.status).not.toBe(200)
    expect(reg.seen.some(s => s.url === '/tiny-b')).toBe(true)
    const scoped = await send(node.url, { path: '/npm/@acme/tiny-c/-/tiny-c-2.0.0.tgz' })
    expect(scoped.status).toBe(200)
    expect(scoped.body.equals(reg.tarballs.get('@acme/tiny-c@2.0.0')?.data ?? Buffer.alloc(0))).toBe(true)
    // Cached by its digest: the packument once, the tarball once.
    const docs = docRequests()
    expect((await send(node.url, { path: '/npm/@acme/tiny-c/-/tiny-c-2.0.0.tgz' })).status).toBe(200)
    expect(docRequests()).toBe(docs)
    expect(reg.seen.filter(s => s.url.endsWith('tiny-c-2.0.0.tgz')).length).toBe(1)
    // A package the registry does not know: its own 404, not a failure of the packument lookup.
    const none = await send(node.url, { path: '/npm/tiny-zz/-/tiny-zz-1.0.0.tgz' })
    expect(none.status).toBe(404)
  })

  it('a scoped tarball asked as @scope%2fname is the same verified tarball as @scope/name', async () => {
    const encoded = await send(node.url, { path: '/npm/@acme%2ftiny-c/-/tiny-c-2.0.0.tgz' })
    expect(encoded.status).toBe(200)
    expect(encoded.body.equals(reg.tarballs.get('@acme/tiny-c@2.0.0')?.data ?? Buffer.alloc(0))).toBe(true)
    const plain = await send(node.url, { path: '/npm/@acme/tiny-c/-/tiny-c-2.0.0.tgz' })
    expect(plain.status).toBe(200)
    expect(reg.seen.filter(s => s.url.endsWith('tiny-c-2.0.0.tgz')).length).toBe(1)
  })

  it('a tarball cached unverified while its packument failed is checked once the packument can be read', async () => {
    reg.settings.docStatus = 503
    reg.corrupt('tiny-b', '1.0.0')
    const path = '/npm/tiny-b/-/tiny-b-1.0.0.tgz'
    // No digest to hold it to: the registry's bytes, cached by URL.
    expect((await send(node.url, { path })).status).toBe(200)
    reg.settings.docStatus = null
    reg.heal()
    // The copy is served while the packument is read; after that the tarball is held to its integrity.
    await send(node.url, { path }).catch(() => null)
    await until(() => reg.seen.some(s => s.url === '/tiny-b' && s.method === 'GET'))
    await until(async () => {
      const r = await send(node.url, { path }).catch(() => null)
      return r?.status === 200 && r.body.equals(reg.tarballs.get('tiny-b@1.0.0')?.data ?? Buffer.alloc(0))
    })
  })

  it('leaves search and audit endpoints to the proxy', async () => {
    const r = await send(node.url, { path: '/npm/-/v1/search?text=tiny' })
    expect(r.status).toBe(404)
    expect(reg.seen.at(-1)?.url).toBe('/-/v1/search?text=tiny')
  })
})
