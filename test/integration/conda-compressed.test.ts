import { createHash } from 'node:crypto'
import { decode, encode } from '@msgpack/msgpack'
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startUpstream } from '../helpers/upstream.ts'
import type { FakeUpstream } from '../helpers/upstream.ts'

/** `bzip2 -9` of a v2 repodata whose base_url is https://cdn.example/conda-forge/noarch/, and of a v1 one without base_url. */
const BZ2_ABSOLUTE = 'QlpoOTFBWSZTWW+YA20AAEAbgBAHkBAAAL/v30ogAHIiQeU9RiaA2gNBKpinhpMRPUzQnqeU2r1zbukJ4UvRc9c6OekkfwLgOUDH8F7n0zudOTE/hqWZ7ETy16xywinjZCFBNmDauo1RiG+JEGxPRAqITgFv5M4Hkszn0oHWrDsC4F3JFOFCQb5gDbQ='
const BZ2_PLAIN = 'QlpoOTFBWSZTWZjqHO8AACWbgBAFIBAAAL/p3wogAFCgAADJkDSm00J6mh6mTTNS/lvV0tChZykikJtnIyKx13MM0ro+gkx901TCh0ejRkgc1My5gfD4wSZD/i7kinChITHUOd4='

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

interface Channel { up: FakeUpstream, cdn: FakeUpstream, shard: Buffer, shardName: string, pkg: Buffer, state: { bz2: string, corrupt: boolean } }

/** A channel with sharded repodata whose base URLs are absolute (packages on a CDN host, shards on the channel host), and a bz2 repodata. */
async function channel (): Promise<Channel> {
  const pkg = Buffer.from('the bytes of tinyd-1.0-0.conda '.repeat(100))
  const state = { bz2: BZ2_PLAIN, corrupt: false }
  const cdn = await startUpstream((req, res) => {
    if (req.url !== '/pkgs/conda-forge/noarch/tinyd-1.0-0.conda') { res.writeHead(404, { 'content-length': '0' }); res.end(); return }
    const body = Buffer.from(pkg)
    if (state.corrupt) body[10] = (body[10] ?? 0) ^ 0xff
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) })
    res.end(req.method === 'HEAD' ? undefined : body)
  })
  closers.push(async () => await cdn.close())
  const sha256 = createHash('sha256').update(pkg).digest()
  const shard = zstdCompressSync(encode({ packages: {}, 'packages.conda': { 'tinyd-1.0-0.conda': { name: 'tinyd', version: '1.0', build: '0', sha256 } }, removed: [] }))
  const shardName = createHash('sha256').update(shard).digest('hex')
  let self = ''
  const up = await startUpstream((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    let body: Buffer | null = null
    if (path === '/conda-forge/noarch/repodata_shards.msgpack.zst') {
      body = zstdCompressSync(encode({
        info: { subdir: 'noarch', base_url: `${cdn.url}/pkgs/conda-forge/noarch/`, shards_base_url: `${self}/conda-forge/noarch/shards/` },
        shards: { tinyd: Buffer.from(shardName, 'hex') }
      }))
    } else if (path === `/conda-forge/noarch/shards/${shardName}.msgpack.zst`) body = shard
    else if (path === '/conda-forge/noarch/repodata.json.bz2') body = Buffer.from(state.bz2, 'base64')
    if (body === null) { res.writeHead(404, { 'content-length': '0' }); res.end(); return }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` })
    res.end(req.method === 'HEAD' ? undefined : body)
  })
  self = up.url
  closers.push(async () => await up.close())
  return { up, cdn, shard, shardName, pkg, state }
}

async function node (ch: Channel): Promise<TestNode> {
  const n = await startTestNode({
    content_rewrite: { targets: [ch.cdn.url, 'https://cdn.example'] },
    rules: [
      { name: 'conda-forge', path_prefix: '/conda-forge/', upstream: ch.up.url, handler: 'conda', strategy: 'proxy', metadata_ttl_s: 0 },
      { name: 'pkgs', path_prefix: '/pkgs/', upstream: ch.cdn.url, handler: 'conda', strategy: 'parallel' }
    ]
  })
  closers.push(async () => await n.stop())
  return n
}

describe('conda compressed and sharded repodata', () => {
  it('points the sharded index\'s absolute base URLs at the mirror; shards pass through unmodified', async () => {
    const ch = await channel()
    const n = await node(ch)
    const res = await send(n.url, { path: '/conda-forge/noarch/repodata_shards.msgpack.zst' })
    expect(res.status).toBe(200)
    expect(res.headers['content-encoding']).toBeUndefined()
    const index = decode(zstdDecompressSync(res.body)) as { info: Record<string, string>, shards: Record<string, Uint8Array> }
    expect(index.info.base_url).toBe(`${n.url}/pkgs/conda-forge/noarch/`)
    expect(index.info.shards_base_url).toBe(`${n.url}/conda-forge/noarch/shards/`)
    expect(Buffer.from(index.shards.tinyd ?? []).toString('hex')).toBe(ch.shardName)
    const head = await send(n.url, { path: '/conda-forge/noarch/repodata_shards.msgpack.zst', method: 'HEAD' })
    expect(head.headers['content-length']).toBe(String(res.body.length))
    const shard = await send(n.url, { path: new URL(`${index.info.shards_base_url}${ch.shardName}.msgpack.zst`).pathname })
    expect(shard.status).toBe(200)
    expect(shard.body.equals(ch.shard)).toBe(true)
    // A shard is immutable: kept whatever the rule's TTL (the index itself is not).
    await send(n.url, { path: new URL(`${index.info.shards_base_url}${ch.shardName}.msgpack.zst`).pathname })
    expect(ch.up.seen.filter(s => s.url.includes('/shards/')).length).toBe(1)
  })

  it('verifies packages by the sha256 of the shard that listed them', async () => {
    const ch = await channel()
    const n = await node(ch)
    const index = decode(zstdDecompressSync((await send(n.url, { path: '/conda-forge/noarch/repodata_shards.msgpack.zst' })).body)) as { info: Record<string, string> }
    await send(n.url, { path: new URL(`${index.info.shards_base_url}${ch.shardName}.msgpack.zst`).pathname })
    ch.state.corrupt = true
    const bad = await send(n.url, { path: new URL(`${index.info.base_url}tinyd-1.0-0.conda`).pathname }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(bad instanceof Error)) expect(bad.status).not.toBe(200)
    ch.state.corrupt = false
    const good = await send(n.url, { path: new URL(`${index.info.base_url}tinyd-1.0-0.conda`).pathname })
    expect(good.status).toBe(200)
    expect(good.body.equals(ch.pkg)).toBe(true)
  })

  it('serves a bz2 repodata unmodified unless it names an absolute base_url, which it answers 404 (clients fall back to .json/.zst)', async () => {
    const ch = await channel()
    const n = await node(ch)
    const plain = await send(n.url, { path: '/conda-forge/noarch/repodata.json.bz2' })
    expect(plain.status).toBe(200)
    expect(plain.body.equals(Buffer.from(BZ2_PLAIN, 'base64'))).toBe(true)
    ch.state.bz2 = BZ2_ABSOLUTE
    const absolute = await send(n.url, { path: '/conda-forge/noarch/repodata.json.bz2', headers: { 'cache-control': 'no-cache' } })
    expect(absolute.status).toBe(404)
    expect((await send(n.url, { path: '/conda-forge/noarch/repodata.json.bz2', method: 'HEAD' })).status).toBe(404)
  })
})
