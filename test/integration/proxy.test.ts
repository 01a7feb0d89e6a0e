import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFileServer, GeneratedContent } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { json, send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { rawValues, startUpstream } from '../helpers/upstream.ts'
import type { FakeUpstream } from '../helpers/upstream.ts'

const SIZE = 200_000

describe('proxy strategy', () => {
  let files: FileServer
  let api: FakeUpstream
  let node: TestNode
  let uploads: Array<{ received: Buffer, firstChunkAt: number, endAt: number }> = []
  let firstUploadChunk: (() => void) | null = null

  beforeAll(async () => {
    files = await startFileServer({ files: { '/files/blob.bin': { size: SIZE, seed: 3 } } })
    api = await startUpstream(async (req, res) => {
      if (req.url === '/api/echo-headers') {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          etag: '"e1"',
          'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT',
          'keep-alive': 'timeout=5',
          'x-custom': 'kept',
          'set-cookie': ['a=1', 'b=2']
        })
        res.end('payload')
        return
      }
      if (req.url?.startsWith('/api/upload') === true) {
        const chunks: Buffer[] = []
        let firstChunkAt = 0
        for await (const chunk of req) {
          if (chunks.length === 0) { firstChunkAt = Date.now(); firstUploadChunk?.() }
          chunks.push(chunk as Buffer)
        }
        uploads.push({ received: Buffer.concat(chunks), firstChunkAt, endAt: Date.now() })
        res.writeHead(201, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ stored: Buffer.concat(chunks).length }))
        return
      }
      if (req.url === '/api/gone') {
        res.writeHead(404, { 'content-type': 'application/json', 'x-error-code': 'EntryNotFound' })
        res.end('{"error":"not here"}')
        return
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.end('ok')
    })
    node = await startTestNode({
      rules: [
        { name: 'files', path_prefix: '/files/', upstream: files.url, strategy: 'proxy' },
        { name: 'api', path_prefix: '/api/', upstream: api.url, strategy: 'proxy' }
      ]
    })
  })
  afterAll(async () => {
    await node.stop()
    await files.close()
    await api.close()
  })

  it('streams a file with its validators and length, dropping hop-by-hop headers', async () => {
    const res = await send(node.url, { path: '/files/blob.bin' })
    expect(res.status).toBe(200)
    expect(res.body.equals(Buffer.concat([...new GeneratedContent(SIZE, 3).chunks(0, SIZE - 1, 65536)]))).toBe(true)
    expect(res.headers['content-length']).toBe(String(SIZE))
    expect(res.headers.etag).toBe(`"gen-3-${SIZE}"`)
    expect(res.headers['accept-ranges']).toBe('bytes')
    expect(res.headers['last-modified']).toBeDefined()

    const echo = await send(node.url, { path: '/api/echo-headers' })
    expect(echo.body.toString()).toBe('payload')
    expect(echo.headers['x-custom']).toBe('kept')
    expect(echo.headers.etag).toBe('"e1"')
    expect(rawValues(echo.rawHeaders, 'set-cookie')).toEqual(['a=1', 'b=2'])
    // The upstream's keep-alive header described its own connection, not ours.
    expect(echo.headers['keep-alive']).not.toBe('timeout=5')
  })

  it('forwards repeated request headers as separate lines, in order, and drops hop-by-hop ones', async () => {
    api.seen.length = 0
    await send(node.url, {
      path: '/api/anything?x=1&y=%2F',
      headers: ['Accept', 'application/vnd.oci.image.index.v1+json', 'Accept', 'application/vnd.docker.distribution.manifest.v2+json',
        'Accept', '*/*', 'Connection', 'keep-alive, x-secret-hop', 'X-Secret-Hop', 'drop me', 'TE', 'trailers', 'Authorization', 'Bearer t']
    })
    const seen = api.seen[0]
    expect(seen?.url).toBe('/api/anything?x=1&y=%2F')
    const raw = seen?.rawHeaders ?? []
    expect(rawValues(raw, 'accept')).toEqual(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', '*/*'])
    expect(rawValues(raw, 'x-secret-hop')).toEqual([])
    expect(rawValues(raw, 'te')).toEqual([])
    expect(rawValues(raw, 'authorization')).toEqual(['Bearer t'])
    expect(rawValues(raw, 'host')).toEqual([new URL(api.url).host])
  })

  it('answers HEAD with the real Content-Length and no body', async () => {
    const res = await send(node.url, { method: 'HEAD', path: '/files/blob.bin' })
    expect(res.status).toBe(200)
    expect(res.headers['content-length']).toBe(String(SIZE))
    expect(res.headers['transfer-encoding']).toBeUndefined()
    expect(res.body.length).toBe(0)
  })

  it('passes Range requests through: 206 with Content-Range, 416 when unsatisfiable', async () => {
    const full = Buffer.concat([...new GeneratedContent(SIZE, 3).chunks(0, SIZE - 1, 65536)])
    const part = await send(node.url, { path: '/files/blob.bin', headers: { range: 'bytes=1000-1999' } })
    expect(part.status).toBe(206)
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${SIZE}`)
    expect(part.body.equals(full.subarray(1000, 2000))).toBe(true)
    const tail = await send(node.url, { path: '/files/blob.bin', headers: { range: 'bytes=-10' } })
    expect(tail.body.equals(full.subarray(SIZE - 10))).toBe(true)
    const bad = await send(node.url, { path: '/files/blob.bin', headers: { range: `bytes=${SIZE + 5}-` } })
    expect(bad.status).toBe(416)
    expect(bad.headers['content-range']).toBe(`bytes */${SIZE}`)
  })

  it('passes conditional requests through: 304 without a body', async () => {
    const res = await send(node.url, { path: '/files/blob.bin', headers: { 'if-none-match': `"gen-3-${SIZE}"` } })
    expect(res.status).toBe(304)
    expect(res.headers.etag).toBe(`"gen-3-${SIZE}"`)
    expect(res.body.length).toBe(0)
  })

  it('passes upstream 404s through with their headers (never invents one)', async () => {
    const res = await send(node.url, { path: '/api/gone' })
    expect(res.status).toBe(404)
    expect(res.headers['x-error-code']).toBe('EntryNotFound')
    expect(json(res)).toEqual({ error: 'not here' })
  })

  it('streams a PUT body upstream while the client is still sending it', async () => {
    uploads = []
    const body = new PassThrough()
    const gotFirst = new Promise<void>((resolve) => { firstUploadChunk = resolve })
    const pending = send(node.url, { method: 'PUT', path: '/api/upload', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body })
    body.write(Buffer.alloc(10_000, 1))
    await gotFirst // the upstream sees bytes before the client has finished
    body.end(Buffer.alloc(20_000, 2))
    const res = await pending
    expect(res.status).toBe(201)
    expect(json(res)).toEqual({ stored: 30_000 })
    expect(uploads[0]?.received.equals(Buffer.concat([Buffer.alloc(10_000, 1), Buffer.alloc(20_000, 2)]))).toBe(true)
  })

  it('forwards a POST body with Content-Length', async () => {
    uploads = []
    const res = await send(node.url, { method: 'POST', path: '/api/upload', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=2' })
    expect(res.status).toBe(201)
    expect(uploads[0]?.received.toString()).toBe('a=1&b=2')
  })
})
