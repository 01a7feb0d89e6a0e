import { existsSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import { startUpstream } from '../helpers/upstream.ts'
import type { FakeUpstream } from '../helpers/upstream.ts'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

function refused (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.on('connect', () => { s.destroy(); resolve(false) })
    s.on('error', () => resolve(true))
  })
}

/** Starts a GET and resolves once response headers arrived; `done` tells how the body ended. */
function startDownload (base: string, path: string): Promise<{ done: Promise<{ complete: boolean, bytes: number }> }> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, agent: false }, (res) => {
      let bytes = 0
      const done = new Promise<{ complete: boolean, bytes: number }>((resolveDone) => {
        res.on('data', (c: Buffer) => { bytes += c.length })
        res.on('end', () => resolveDone({ complete: res.complete, bytes }))
        res.on('error', () => resolveDone({ complete: false, bytes }))
        res.on('aborted', () => resolveDone({ complete: false, bytes }))
      })
      resolve({ done })
    })
    req.on('error', reject)
    req.end()
  })
}

async function slowUpstream (finishAfterMs: number | null): Promise<FakeUpstream & { closed: () => number }> {
  let closed = 0
  const up = await startUpstream((_req, res) => {
    res.on('close', () => { closed++ })
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '2000' })
    res.write(Buffer.alloc(1000))
    if (finishAfterMs !== null) setTimeout(() => res.end(Buffer.alloc(1000)), finishAfterMs)
  })
  cleanups.push(up.close)
  return Object.assign(up, { closed: () => closed })
}

describe('createNode lifecycle', () => {
  it('listens on port 0, reports its address, starts and stops idempotently', async () => {
    const t = await startTestNode({ rules: [{ name: 'x', pattern: '.*', upstream: 'http://127.0.0.1:9' }] })
    const { node } = t
    await node.start()
    const addr = node.address()
    expect(addr.port).toBeGreaterThan(0)
    expect(addr.url).toBe(`http://127.0.0.1:${addr.port}`)
    expect((await send(addr.url, { path: '/health' })).status).toBe(200)
    await Promise.all([node.stop(), node.stop()])
    // Nothing served metadata, so its index was never opened: nothing is left writing into the cache dir.
    expect(existsSync(join(t.cacheDir, 'metadata', 'index'))).toBe(false)
    await t.stop()
    expect(await refused(addr.port)).toBe(true)
    expect(() => node.address()).toThrow()
  })

  it('lets in-flight responses finish within the deadline', async () => {
    const up = await slowUpstream(300)
    const t = await startTestNode({ rules: [{ name: 'x', pattern: '.*', upstream: up.url }] })
    const dl = await startDownload(t.url, '/file')
    const started = Date.now()
    await t.node.stop({ deadlineMs: 3000 })
    expect(await dl.done).toEqual({ complete: true, bytes: 2000 })
    expect(Date.now() - started).toBeLessThan(2500)
    await t.stop()
  })

  it('cuts what is still running at the deadline and aborts its upstream request', async () => {
    const up = await slowUpstream(null)
    const t = await startTestNode({ rules: [{ name: 'x', pattern: '.*', upstream: up.url }] })
    const port = t.node.address().port
    const dl = await startDownload(t.url, '/file')
    const started = Date.now()
    await t.node.stop({ deadlineMs: 200 })
    expect(Date.now() - started).toBeLessThan(2000)
    expect((await dl.done).complete).toBe(false)
    await expect.poll(() => up.closed(), { timeout: 2000 }).toBe(1)
    expect(await refused(port)).toBe(true)
    await t.stop()
  })

  it('stops at its deadline while a parallel file\'s first request waits on an upstream that never answers', async () => {
    let asked = 0
    let closed = 0
    const up = await startUpstream((_req, res) => {
      asked++
      res.on('close', () => { closed++ })
    })
    cleanups.push(up.close)
    const t = await startTestNode({
      server: { read_timeout_s: 30, max_concurrent_downloads: 1 },
      rules: [{ name: 'x', pattern: '.*', upstream: up.url, strategy: 'parallel', cache_key_source: 'final' }]
    })
    for (const path of ['/big.bin', '/next.bin']) {
      const client = httpRequest({ host: '127.0.0.1', port: t.node.address().port, path, agent: false })
      client.on('error', () => {})
      client.end()
      await expect.poll(() => asked, { timeout: 2000 }).toBe(1)
    }
    // Not downloads yet, but an upstream exchange under way and one waiting for its slot: /health says so.
    await expect.poll(async () => (JSON.parse((await send(t.url, { path: '/health' })).body.toString()) as { progress: Array<{ url: string, state: string }> })
      .progress.map(p => [p.url, p.state])).toEqual([[`${up.url}/big.bin`, 'asking'], [`${up.url}/next.bin`, 'queued']])
    const started = Date.now()
    await t.node.stop({ deadlineMs: 200 })
    expect(Date.now() - started).toBeLessThan(3000)
    await expect.poll(() => closed, { timeout: 2000 }).toBe(1)
    expect(asked).toBe(1)
    await t.stop()
  })
})
