import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GeneratedContent, generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { json, send } from '../helpers/client.ts'
import { until } from './fetch-helpers.ts'
import { startEngineNode } from './fetch-node.ts'
import type { EngineNode } from './fetch-node.ts'

const SIZE = 3 * 1024 * 1024 + 17
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('parallel strategy over HTTP', () => {
  let files: FileServer
  let node: EngineNode
  const slice = async (start: number, end: number, seed = 5): Promise<Buffer> => {
    const parts: Buffer[] = []
    for (const c of new GeneratedContent(SIZE, seed).chunks(start, end, 65536)) parts.push(Buffer.from(await c))
    return Buffer.concat(parts)
  }

  beforeAll(async () => {
    files = await startFileServer({
      files: { '/f/a.bin': { size: SIZE, seed: 5 }, '/f/b.bin': { size: SIZE, seed: 6 }, '/f/c.bin': { size: 1000, seed: 7 }, '/g/latest.bin': { size: SIZE, seed: 8 }, '/g/busy.bin': { size: SIZE, seed: 11 } },
      perConnectionBps: 8 * 1024 * 1024
    })
    node = await startEngineNode({
      rules: [
        { name: 'f', path_prefix: '/f/', upstream: files.url, strategy: 'parallel', min_size: 0, concurrency: 4, chunk_size: 262144 },
        { name: 'g', path_prefix: '/g/', upstream: files.url, strategy: 'parallel', min_size: 0, concurrency: 4, chunk_size: 262144, revalidate_s: 0 }
      ]
    })
  })
  afterAll(async () => {
    await node.stop()
    await files.close()
  })

  it('cold GET streams the whole file with real length, then HEAD and Range come from cache', async () => {
    const cold = await send(node.url, { path: '/f/a.bin' })
    expect(cold.status).toBe(200)
    expect(cold.headers['content-length']).toBe(String(SIZE))
    expect(cold.headers['accept-ranges']).toBe('bytes')
    expect(sha(cold.body)).toBe(generatedSha256(SIZE, 5))
    const etag = cold.headers.etag
    expect(etag).toBeTruthy()

    const head = await send(node.url, { path: '/f/a.bin', method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(SIZE))
    expect(head.headers.etag).toBe(etag)
    expect(head.body.length).toBe(0)

    const r1 = await send(node.url, { path: '/f/a.bin', headers: { range: 'bytes=100-199' } })
    expect(r1.status).toBe(206)
    expect(r1.headers['content-range']).toBe(`bytes 100-199/${SIZE}`)
    expect(r1.body.equals(await slice(100, 199))).toBe(true)

    const r2 = await send(node.url, { path: '/f/a.bin', headers: { range: `bytes=${SIZE - 10}-` } })
    expect(r2.status).toBe(206)
    expect(r2.body.equals(await slice(SIZE - 10, SIZE - 1))).toBe(true)

    const r3 = await send(node.url, { path: '/f/a.bin', headers: { range: 'bytes=-5' } })
    expect(r3.status).toBe(206)
    expect(r3.headers['content-range']).toBe(`bytes ${SIZE - 5}-${SIZE - 1}/${SIZE}`)

    const r4 = await send(node.url, { path: '/f/a.bin', headers: { range: `bytes=${SIZE}-` } })
    expect(r4.status).toBe(416)
    expect(r4.headers['content-range']).toBe(`bytes */${SIZE}`)

    const nm = await send(node.url, { path: '/f/a.bin', headers: { 'if-none-match': String(etag) } })
    expect(nm.status).toBe(304)
    expect(nm.body.length).toBe(0)

    const ir = await send(node.url, { path: '/f/a.bin', headers: { range: 'bytes=0-9', 'if-range': '"other"' } })
    expect(ir.status).toBe(200)
    expect(ir.body.length).toBe(SIZE)
    const ok = await send(node.url, { path: '/f/a.bin', headers: { range: 'bytes=0-9', 'if-range': String(etag) } })
    expect(ok.status).toBe(206)

    // The commit (fsync, rename, index) lands a moment after the last byte reached the client.
    const cacheStats = async (): Promise<Record<string, number>> => json(await send(node.url, { path: '/stats' })).cache as Record<string, number>
    await until(async () => (await cacheStats()).file_count === 1)
    const stats = await cacheStats()
    expect(stats.file_count).toBe(1)
    expect((stats.hits ?? 0) + (stats.misses ?? 0)).toBeGreaterThanOrEqual(9)
    expect(stats.bytes_from_upstream).toBeGreaterThanOrEqual(SIZE)
  })

  it('a Range on a cold file is answered 206 from the part fetched first', async () => {
    const start = SIZE - 300_000
    const res = await send(node.url, { path: '/f/b.bin', headers: { range: `bytes=${start}-${start + 999}` } })
    expect(res.status).toBe(206)
    expect(res.body.equals(await slice(start, start + 999, 6))).toBe(true)
    // the first upstream request starts at the client's offset
    expect(files.stats.rangeHeaders.some(h => h.startsWith(`bytes=${start}-`))).toBe(true)
  })

  it('HEAD on a cold file gives the true length without a body', async () => {
    const head = await send(node.url, { path: '/f/c.bin', method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe('1000')
    expect(head.body.length).toBe(0)
  })

  it('HEAD on a cold file starts its download: the GET after it comes from that download, the file sent once', async () => {
    files.setFile('/f/h.bin', { size: SIZE, seed: 10 })
    const before = (json(await send(node.url, { path: '/stats' })).cache as { file_count: number }).file_count
    const head = await send(node.url, { path: '/f/h.bin', method: 'HEAD' })
    expect(head.headers['content-length']).toBe(String(SIZE))
    // Nobody reads it, and it goes on to the cache (finish_abandoned): no GET has asked for it yet.
    const cached = (): Promise<boolean> => send(node.url, { path: '/stats' }).then(r => ((json(r).cache as { file_count: number }).file_count) >= before + 1)
    await until(cached, 10_000)
    const get = await send(node.url, { path: '/f/h.bin' })
    expect(sha(get.body)).toBe(generatedSha256(SIZE, 10))
    expect(files.stats.bytesFor('/f/h.bin')).toBe(SIZE)
  })

  it('a rule\'s revalidate_s: a file that changed at its URL is fetched again, with its new ETag', async () => {
    const first = await send(node.url, { path: '/g/latest.bin' })
    expect(sha(first.body)).toBe(generatedSha256(SIZE, 8))
    files.setFile('/g/latest.bin', { size: SIZE, seed: 9 })
    await until(async () => sha((await send(node.url, { path: '/g/latest.bin' })).body) === generatedSha256(SIZE, 9), 10_000)
    const again = await send(node.url, { path: '/g/latest.bin' })
    expect(sha(again.body)).toBe(generatedSha256(SIZE, 9))
    expect(again.headers.etag).not.toBe(first.headers.etag)
  })

  it('a cached file whose due recheck the upstream answers with an error is served marked stale', async () => {
    const first = await send(node.url, { path: '/g/busy.bin' })
    expect(first.headers['x-cache']).toBe('MISS')
    await until(async () => (await send(node.url, { path: '/g/busy.bin', method: 'HEAD' })).headers['x-cache'] === 'HIT', 10_000)
    files.configure({ status: { '/g/busy.bin': 503 } })
    try {
      const stale = await send(node.url, { path: '/g/busy.bin' })
      expect(stale.status).toBe(200)
      expect(stale.headers['x-cache']).toBe('HIT')
      expect(stale.headers.warning).toBe('110 - "Response is Stale"')
      expect(sha(stale.body)).toBe(sha(first.body))
    } finally {
      files.configure({ status: {} })
    }
  })

  it('relays upstream 404 as 404', async () => {
    const res = await send(node.url, { path: '/f/missing.bin' })
    expect(res.status).toBe(404)
  })
})

describe('parallel strategy, an upstream that sends neither a length nor Range (chunked)', () => {
  const body = new GeneratedContent(2 * 1024 * 1024 + 7, 9)
  let upstream: Server
  let node: EngineNode
  let requests = 0

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      requests++
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      if (req.method === 'HEAD') { res.end(); return }
      ;(async () => {
        for (const c of body.chunks(0, body.size - 1, 65536)) res.write(Buffer.from(await c))
        res.end()
      })().catch(() => res.destroy())
    })
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
    node = await startEngineNode({ rules: [{ name: 'c', path_prefix: '/c/', upstream: url, strategy: 'parallel', min_size: 1, concurrency: 4 }] })
  })
  afterAll(async () => {
    await node.stop()
    await new Promise((resolve) => upstream.close(resolve))
  })

  it('one GET: the first client streams it, the file is cached with its length, a range is cut from the cache', async () => {
    const want = generatedSha256(body.size, 9)
    const cold = await send(node.url, { path: '/c/x.bin' })
    expect(cold.status).toBe(200)
    expect(sha(cold.body)).toBe(want)
    await until(async () => (json(await send(node.url, { path: '/stats' })).cache as { file_count: number }).file_count === 1)
    const hit = await send(node.url, { path: '/c/x.bin' })
    expect(hit.headers['content-length']).toBe(String(body.size))
    expect(sha(hit.body)).toBe(want)
    const range = await send(node.url, { path: '/c/x.bin', headers: { range: 'bytes=-5' } })
    expect(range.status).toBe(206)
    expect(range.headers['content-range']).toBe(`bytes ${body.size - 5}-${body.size - 1}/${body.size}`)
    expect(requests).toBe(1)
  })
})

describe('parallel strategy, an upstream that redirects in a loop', () => {
  let upstream: Server
  let node: EngineNode
  let hops = 0

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      hops++
      res.writeHead(302, { location: req.url === '/loop/a.bin' ? '/loop/b.bin?sig=secret' : '/loop/a.bin', 'content-length': '0' }).end()
    })
    await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
    node = await startEngineNode({ rules: [{ name: 'loop', path_prefix: '/loop/', upstream: url + '/loop/', strip_prefix: true, strategy: 'parallel', min_size: 0 }] })
  })
  afterAll(async () => {
    await node.stop()
    upstream.closeAllConnections()
    await new Promise<void>(resolve => upstream.close(() => resolve()))
  })

  it('answers 502 with a reason naming the URL asked for (not its query), after a bounded number of hops', async () => {
    const res = await send(node.url, { path: '/loop/a.bin' })
    expect(res.status).toBe(502)
    const body = json(res)
    expect(body.message).toBe('Too many redirects')
    expect(body.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/loop\/a\.bin$/)
    expect(hops).toBeLessThan(50)
  })
})
