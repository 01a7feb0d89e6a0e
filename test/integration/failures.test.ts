import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { json, send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import type { FakeUpstream } from '../helpers/upstream.ts'

/** GET through the node; resolves with how the transfer ended instead of throwing. */
function transfer (base: string, path: string): Promise<{ status: number, bytes: number, complete: boolean }> {
  const url = new URL(base)
  return new Promise((resolve) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, agent: false }, (res) => {
      let bytes = 0
      res.on('data', (c: Buffer) => { bytes += c.length })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete }))
      res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }))
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }))
    })
    req.on('error', () => resolve({ status: 0, bytes: 0, complete: false }))
    req.end()
  })
}

describe('failures', () => {
  let files: FileServer
  let slow: FakeUpstream
  let node: TestNode
  let slowClosed = 0

  beforeAll(async () => {
    files = await startFileServer({
      files: { '/cut/big.bin': { size: 1_000_000 }, '/early/x.bin': { size: 1000 } },
      faults: { failAfterBytes: 100_000, paths: ['/cut/big.bin'] }
    })
    slow = await startUpstream((req, res) => {
      res.on('close', () => { slowClosed++ })
      if (req.url === '/slow/headers') return // never answers
      if (req.url === '/slow/reset') { req.socket.destroy(); return }
      if (req.url === '/slow/stream') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        res.write(Buffer.alloc(1000))
        return // then stalls forever
      }
      res.end('ok')
    })
    const dead = await deadPort()
    node = await startTestNode({
      server: { read_timeout_s: 0.4, connect_timeout_s: 1 },
      rules: [
        { name: 'slow', path_prefix: '/slow/', upstream: slow.url },
        { name: 'dead', path_prefix: '/dead/', upstream: `http://127.0.0.1:${dead}` },
        { name: 'nodns', path_prefix: '/nodns/', upstream: 'http://aimirror-test.invalid' },
        { name: 'files', pattern: '^/(cut|early)/', upstream: files.url }
      ]
    })
  })
  afterAll(async () => {
    await node.stop()
    await files.close()
    await slow.close()
  })

  it('maps an upstream that does not answer in time to 504 with a JSON reason', async () => {
    const res = await send(node.url, { path: '/slow/headers' })
    expect(res.status).toBe(504)
    expect(json(res).error).toBe('ERR_UPSTREAM_TIMEOUT')
    expect(res.headers['content-type']).toMatch(/application\/json/)
  })

  it('maps refused connections, unknown hosts and resets before headers to 502, never 404', async () => {
    for (const path of ['/dead/x', '/nodns/x', '/slow/reset']) {
      const res = await send(node.url, { path })
      expect(res.status, path).toBe(502)
      expect(json(res).error, path).toBe('ERR_UPSTREAM_UNREACHABLE')
    }
  })

  it('cuts the client off when the upstream resets mid-body, and keeps serving', async () => {
    const cut = await transfer(node.url, '/cut/big.bin')
    expect(cut.status).toBe(200)
    expect(cut.complete).toBe(false)
    expect(cut.bytes).toBeLessThan(1_000_000)
    const stalled = await transfer(node.url, '/slow/stream')
    expect(stalled.complete).toBe(false)
    expect(stalled.bytes).toBe(1000)
    const health = await send(node.url, { path: '/health' })
    expect(health.status).toBe(200)
    const ok = await send(node.url, { path: '/early/x.bin' })
    expect(ok.status).toBe(200)
    expect(ok.body.length).toBe(1000)
  })

  it('aborts the upstream request when the client goes away', async () => {
    const before = slowClosed
    const url = new URL(node.url)
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/slow/stream', agent: false }, (res) => {
        res.once('data', () => { req.destroy(); resolve() })
      })
      req.on('error', () => {})
      req.end()
    })
    await expect.poll(() => slowClosed, { timeout: 2000 }).toBeGreaterThan(before)
  })

  it('refuses paths that try to escape, with 400 and a reason', async () => {
    for (const path of ['/slow/../../etc/passwd', '/slow/%2e%2e/x', '//evil.example/x', 'http://evil.example/x', '/slow/%2F%2E%2E%2Fx']) {
      const res = await send(node.url, { path })
      expect(res.status, path).toBe(400)
      expect(json(res).error, path).toBe('ERR_BAD_REQUEST')
    }
    expect(slow.seen.some((r) => r.url.includes('etc') || r.url.includes('evil'))).toBe(false)
  })

  it('answers unmatched paths with its own 404 and a JSON reason', async () => {
    const res = await send(node.url, { path: '/nothing/here' })
    expect(res.status).toBe(404)
    expect(json(res)).toMatchObject({ error: 'ERR_NO_ROUTE', path: '/nothing/here' })
  })

  it('reserves /health and /stats for GET and HEAD', async () => {
    const res = await send(node.url, { method: 'POST', path: '/health', body: 'x' })
    expect(res.status).toBe(405)
    expect(json(res).error).toBe('ERR_METHOD_NOT_ALLOWED')
  })
})
