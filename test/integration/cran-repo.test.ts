import { gzipSync } from 'node:zlib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startCranRepo } from '../fixtures/upstreams/cran-repo.ts'
import type { CranRepo } from '../fixtures/upstreams/cran-repo.ts'

let repo: CranRepo
let node: TestNode
const PACKAGES = 'Package: tinyr\nVersion: 1.0.0\nImports: tinydep\nMD5sum: 0123\nNeedsCompilation: no\n\nPackage: tinydep\nVersion: 0.2.0\n'

function cranRules (upstream: string, ttl: number): unknown[] {
  return [
    { name: 'cran-packages', pattern: '^/(?:cran/)?(?:src/contrib|bin/(?:windows|macosx))/.+\\.(?:tar\\.gz|tgz|zip)$', upstream, handler: 'cran', strategy: 'parallel', path_rewrite: [{ search: '/cran/', replace: '/' }] },
    { name: 'cran-src', path_prefix: '/src/contrib/', upstream, handler: 'cran', strategy: 'proxy', metadata_ttl_s: ttl },
    { name: 'cran', path_prefix: '/cran/', strip_prefix: true, upstream, handler: 'cran', strategy: 'proxy', metadata_ttl_s: ttl }
  ]
}

beforeEach(async () => {
  repo = await startCranRepo(new Map([
    ['/src/contrib/PACKAGES', Buffer.from(PACKAGES)],
    ['/src/contrib/PACKAGES.gz', gzipSync(PACKAGES)],
    ['/src/contrib/tinyr_1.0.0.tar.gz', gzipSync('tinyr source '.repeat(1000))],
    ['/src/contrib/tinydep_0.1.0.tar.gz', gzipSync('tinydep 0.1 source')],
    ['/src/contrib/tinydep_0.2.0.tar.gz', gzipSync('tinydep 0.2 source')]
  ]))
  node = await startTestNode({ rules: cranRules(repo.url, 0) })
})
afterEach(async () => {
  await node.stop()
  await repo.close()
})

describe('CRAN repositories', () => {
  it('passes PACKAGES files through byte for byte, and a missing PACKAGES.rds as a 404', async () => {
    const rds = await send(node.url, { path: '/src/contrib/PACKAGES.rds', headers: { 'user-agent': 'R (4.2.2 x86_64-pc-linux-gnu x86_64 linux-gnu)' } })
    expect(rds.status).toBe(404)
    const gz = await send(node.url, { path: '/cran/src/contrib/PACKAGES.gz', headers: { 'accept-encoding': 'gzip' } })
    expect(gz.status).toBe(200)
    expect(gz.headers['content-encoding']).toBeUndefined()
    expect(gz.body.equals(repo.files.get('/src/contrib/PACKAGES.gz') ?? Buffer.alloc(0))).toBe(true)
    const plain = await send(node.url, { path: '/src/contrib/PACKAGES', headers: { 'accept-encoding': 'gzip' } })
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.body.toString()).toBe(PACKAGES)
  })

  it('caches tarballs and finds one that moved to Archive since the index was read', async () => {
    const a = await send(node.url, { path: '/cran/src/contrib/tinyr_1.0.0.tar.gz' })
    expect(a.status).toBe(200)
    const b = await send(node.url, { path: '/src/contrib/tinyr_1.0.0.tar.gz' })
    expect(b.body.equals(a.body)).toBe(true)
    expect(repo.seen.filter(s => s.url.endsWith('tinyr_1.0.0.tar.gz'))).toHaveLength(1)

    repo.archive('tinydep_0.1.0.tar.gz')
    const moved = await send(node.url, { path: '/src/contrib/tinydep_0.1.0.tar.gz' })
    expect(moved.status).toBe(200)
    expect(moved.body.equals(repo.files.get('/src/contrib/Archive/tinydep/tinydep_0.1.0.tar.gz') ?? Buffer.alloc(0))).toBe(true)
    const again = await send(node.url, { path: '/src/contrib/tinydep_0.1.0.tar.gz' })
    expect(again.status).toBe(200)
    expect(repo.seen.filter(s => s.url === '/src/contrib/tinydep_0.1.0.tar.gz')).toHaveLength(1)
    expect((await send(node.url, { path: '/src/contrib/nothere_1.0.tar.gz' })).status).toBe(404)
  })

  it('serves indexes stale and tarballs from the cache when the repository is down', async () => {
    await send(node.url, { path: '/src/contrib/PACKAGES.gz' })
    await send(node.url, { path: '/src/contrib/PACKAGES.rds' })
    await send(node.url, { path: '/src/contrib/tinyr_1.0.0.tar.gz' })
    await repo.close()
    const gz = await send(node.url, { path: '/src/contrib/PACKAGES.gz' })
    expect(gz.status).toBe(200)
    expect(gz.headers['x-aimirror-stale']).toBe('1')
    expect((await send(node.url, { path: '/src/contrib/PACKAGES.rds' })).status).toBe(404)
    expect((await send(node.url, { path: '/src/contrib/tinyr_1.0.0.tar.gz' })).status).toBe(200)
    expect((await send(node.url, { path: '/src/contrib/PACKAGES' })).status).toBe(502)
  })

  it('asks a private repository with the client\'s credentials, and keeps what they got from other clients', async () => {
    const authorization = `Basic ${Buffer.from('ruser:rpass').toString('base64')}`
    const files = new Map(repo.files)
    await node.stop()
    await repo.close()
    repo = await startCranRepo(files, { authorization })
    node = await startTestNode({ rules: cranRules(repo.url, 300) })
    for (const path of ['/src/contrib/PACKAGES', '/cran/src/contrib/tinyr_1.0.0.tar.gz']) {
      const mine = await send(node.url, { path, headers: { authorization } })
      expect(mine.status).toBe(200)
      expect(mine.body.equals(files.get(path.replace('/cran/', '/')) ?? Buffer.alloc(0))).toBe(true)
      const anonymous = await send(node.url, { path })
      expect(anonymous.status).toBe(401)
      const wrong = await send(node.url, { path, headers: { authorization: 'Basic d3Jvbmc6d3Jvbmc=' } })
      expect(wrong.status).toBe(401)
    }
  })
})
