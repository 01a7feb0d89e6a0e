import { zstdDecompressSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { json, send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startCondaChannel } from '../fixtures/upstreams/conda-channel.ts'
import type { CondaChannel } from '../fixtures/upstreams/conda-channel.ts'

let chan: CondaChannel | null = null
let node: TestNode | null = null
afterEach(async () => {
  await node?.stop()
  await chan?.close()
  node = null
  chan = null
})

const PACKAGES = [
  { name: 'tinyd', version: '1.0' },
  { name: 'tinyc', version: '1.0', depends: ['tinyd >=1.0'] }
]

async function setup (baseUrl = false, ttl = 300, authorization?: string, bz2 = false): Promise<{ chan: CondaChannel, node: TestNode }> {
  chan = await startCondaChannel({ channel: 'conda-forge', packages: PACKAGES, baseUrl, authorization, bz2 })
  node = await startTestNode({
    content_rewrite: { targets: [chan.cdnUrl] },
    rules: [
      { name: 'conda-forge-packages', path_prefix: '/conda-forge/', pattern: '\\.(?:conda|tar\\.bz2)$', strip_prefix: true, upstream: chan.url, handler: 'conda', strategy: 'parallel' },
      { name: 'conda-forge', path_prefix: '/conda-forge/', strip_prefix: true, upstream: chan.url, handler: 'conda', strategy: 'proxy', metadata_ttl_s: ttl },
      { name: 'pkgs', path_prefix: '/pkgs/', strip_prefix: true, upstream: `${chan.cdnUrl}/pkgs`, handler: 'conda', strategy: 'parallel' }
    ]
  })
  return { chan, node }
}

const pkg = (c: CondaChannel, file: string): Buffer => c.packages.get(`noarch/${file}`)?.data ?? Buffer.alloc(0)

describe('conda channels', () => {
  it('passes repodata variants through with their real status', async () => {
    const { chan, node } = await setup()
    const zst = await send(node.url, { path: '/conda-forge/noarch/repodata.json.zst' })
    expect(zst.status).toBe(200)
    const head = await send(node.url, { path: '/conda-forge/noarch/repodata.json.zst', method: 'HEAD' })
    expect(head.headers['content-length']).toBe(String(zst.body.length))
    const doc = JSON.parse(zstdDecompressSync(zst.body).toString()) as { 'packages.conda': Record<string, { sha256: string }> }
    expect(doc['packages.conda']['tinyc-1.0-0.conda']?.sha256).toBe(chan.packages.get('noarch/tinyc-1.0-0.conda')?.sha256)
    for (const missing of ['repodata.json.bz2', 'repodata.jlap', 'repodata_shards.msgpack.zst']) {
      expect((await send(node.url, { path: `/conda-forge/noarch/${missing}`, method: 'HEAD' })).status).toBe(404)
    }
    const plain = await send(node.url, { path: '/conda-forge/linux-64/repodata.json', headers: { 'accept-encoding': 'gzip' } })
    expect(plain.status).toBe(200)
    const again = await send(node.url, { path: '/conda-forge/linux-64/repodata.json', headers: { 'if-none-match': String(plain.headers.etag), 'accept-encoding': 'gzip' } })
    expect(again.status).toBe(304)
    const channeldata = await send(node.url, { path: '/conda-forge/channeldata.json' })
    expect(json(channeldata).channeldata_version).toBe(1)
  })

  it('asks a private channel with the client\'s credentials, and keeps what they got from other clients', async () => {
    const authorization = `Basic ${Buffer.from('cuser:cpass').toString('base64')}`
    const { chan, node } = await setup(false, 300, authorization)
    for (const path of ['/conda-forge/noarch/repodata.json', '/conda-forge/noarch/repodata.json.zst', '/conda-forge/noarch/tinyd-1.0-0.conda']) {
      const mine = await send(node.url, { path, headers: { authorization } })
      expect(mine.status).toBe(200)
      expect((await send(node.url, { path })).status).toBe(401)
      expect((await send(node.url, { path, headers: { authorization: 'Basic d3Jvbmc6d3Jvbmc=' } })).status).toBe(401)
    }
    expect((await send(node.url, { path: '/conda-forge/noarch/tinyd-1.0-0.conda', headers: { authorization } })).body.equals(pkg(chan, 'tinyd-1.0-0.conda'))).toBe(true)
  })

  it('verifies packages by the repodata sha256; before repodata they are keyed by URL', async () => {
    const { chan, node } = await setup()
    const early = await send(node.url, { path: '/conda-forge/noarch/tinyd-1.0-0.conda' })
    expect(early.status).toBe(200)
    expect(early.body.equals(pkg(chan, 'tinyd-1.0-0.conda'))).toBe(true)
    await send(node.url, { path: '/conda-forge/noarch/repodata.json' })
    chan.corrupt('noarch/tinyc-1.0-0.conda')
    const bad = await send(node.url, { path: '/conda-forge/noarch/tinyc-1.0-0.conda' }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(bad instanceof Error)) expect(bad.status).not.toBe(200)
    expect((await send(node.url, { path: '/conda-forge/noarch/nothere-1.0-0.conda' })).status).toBe(404)
  })

  it('a client of repodata.json.bz2 gets packages verified by the sha256 of the same repodata in zstd', async () => {
    const { chan, node } = await setup(false, 300, undefined, true)
    const bz2 = await send(node.url, { path: '/conda-forge/noarch/repodata.json.bz2' })
    expect(bz2.status).toBe(200)
    expect(bz2.body.subarray(0, 3).toString()).toBe('BZh')
    chan.corrupt('noarch/tinyc-1.0-0.conda')
    // Keyed by URL, the corrupt bytes were served as they came.
    const bad = await send(node.url, { path: '/conda-forge/noarch/tinyc-1.0-0.conda' }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(bad instanceof Error)) expect(bad.status).not.toBe(200)
    const good = await send(node.url, { path: '/conda-forge/noarch/tinyd-1.0-0.conda' })
    expect(good.body.equals(pkg(chan, 'tinyd-1.0-0.conda'))).toBe(true)
    expect(chan.seen.some(s => s.url.endsWith('/noarch/repodata.json.zst'))).toBe(true)
  })

  it('points an absolute base_url at the mirror in .json and .zst, and serves the packages there', async () => {
    const { chan, node } = await setup(true)
    const plain = json(await send(node.url, { path: '/conda-forge/noarch/repodata.json' })) as { info: { base_url: string } }
    expect(plain.info.base_url).toBe(`${node.url}/pkgs/conda-forge/noarch/`)
    const zst = await send(node.url, { path: '/conda-forge/noarch/repodata.json.zst' })
    expect((JSON.parse(zstdDecompressSync(zst.body).toString()) as { info: { base_url: string } }).info.base_url).toBe(`${node.url}/pkgs/conda-forge/noarch/`)
    const file = await send(node.url, { path: new URL(plain.info.base_url + 'tinyc-1.0-0.conda').pathname })
    expect(file.status).toBe(200)
    expect(file.body.equals(pkg(chan, 'tinyc-1.0-0.conda'))).toBe(true)
    // Packages under the base_url are verified against the repodata's sha256 like any other.
    chan.corrupt('noarch/tinyd-1.0-0.conda')
    const bad = await send(node.url, { path: new URL(plain.info.base_url + 'tinyd-1.0-0.conda').pathname }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(bad instanceof Error)) expect(bad.status).not.toBe(200)
  })

  it('serves repodata stale and packages from the cache while the channel is down', async () => {
    const { chan, node } = await setup(false, 0)
    const first = await send(node.url, { path: '/conda-forge/noarch/repodata.json.zst' })
    await send(node.url, { path: '/conda-forge/noarch/tinyc-1.0-0.conda' })
    await chan.close()
    const stale = await send(node.url, { path: '/conda-forge/noarch/repodata.json.zst' })
    expect(stale.status).toBe(200)
    expect(stale.headers['x-aimirror-stale']).toBe('1')
    expect(stale.body.equals(first.body)).toBe(true)
    expect((await send(node.url, { path: '/conda-forge/noarch/tinyc-1.0-0.conda' })).status).toBe(200)
    expect((await send(node.url, { path: '/conda-forge/linux-64/repodata.json.zst' })).status).toBe(502)
  })
})
