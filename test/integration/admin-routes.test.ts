import { connect } from 'node:net'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { startTestNode } from '../helpers/node.ts'
import { deadPort } from '../helpers/upstream.ts'
import type { TestNode } from '../helpers/node.ts'

/** The node's own paths behind a catch-all rule (the seed config has one), with the cluster off. */
describe('the node\'s own paths', () => {
  let files: FileServer
  let node: TestNode

  beforeAll(async () => {
    files = await startFileServer({ files: { '/slow.bin': { size: 4 << 20, seed: 1 } }, perConnectionBps: 1 << 20 })
    node = await startTestNode({ rules: [{ name: 'all', pattern: '.*', upstream: files.url, strategy: 'parallel', min_size: 1, concurrency: 2 }] })
  })
  afterAll(async () => {
    await node.stop()
    await files.close()
  })

  it('/cluster/stats and /peers answer GET and HEAD themselves and refuse other methods, never the rule', async () => {
    for (const path of ['/cluster/stats', '/peers', '/health', '/stats']) {
      const head = await fetch(node.url + path, { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(head.headers.get('content-type')).toMatch(/application\/json/)
      const post = await fetch(node.url + path, { method: 'POST', body: 'x' })
      expect(post.status).toBe(405)
      expect(post.headers.get('allow')).toBe('GET, HEAD')
    }
    expect(files.stats.requests).toBe(0)
  })

  it('/health lists the cache keys downloading (a query\'s credentials redacted), /cluster/stats counts them the same way', async () => {
    const ac = new AbortController()
    const res = await fetch(node.url + '/slow.bin?access_token=SEKRET', { signal: ac.signal })
    await (res.body as ReadableStream<Uint8Array>).getReader().read()
    const text = await (await fetch(node.url + '/health')).text()
    expect(text).not.toContain('SEKRET')
    const health = JSON.parse(text) as { active_downloads: number, downloads: unknown[], progress: Array<{ key: string, url: string }> }
    expect(health.active_downloads).toBe(1)
    expect(health.downloads).toEqual([health.progress[0]?.key])
    expect(typeof health.downloads[0]).toBe('string')
    expect(health.progress[0]?.url).toMatch(/\/slow\.bin\?access_token=\[redacted\]$/)
    const cluster = await (await fetch(node.url + '/cluster/stats')).json() as { totals: { active_downloads: number }, nodes: Array<{ cache: { max_bytes: number } }> }
    expect(cluster.totals.active_downloads).toBe(1)
    expect(cluster.nodes[0]?.cache.max_bytes).toBeGreaterThan(0)
    ac.abort()
  })

  it('/health and /metrics name the upstreams taken as away', async () => {
    const up = `http://127.0.0.1:${await deadPort()}`
    const mirror = await startTestNode({ rules: [{ name: 'pypi', path_prefix: '/simple/', upstream: up, handler: 'pypi', strategy: 'proxy' }] })
    try {
      const before = await (await fetch(mirror.url + '/health')).json() as { upstreams_away: unknown[] }
      expect(before.upstreams_away).toEqual([])
      expect((await fetch(mirror.url + '/simple/x/')).status).toBe(502)
      const after = await (await fetch(mirror.url + '/health')).json() as { upstreams_away: Array<{ origin: string, until: string }> }
      expect(after.upstreams_away.map(a => a.origin)).toEqual([up])
      expect(Date.parse(after.upstreams_away[0]?.until ?? '')).toBeGreaterThan(Date.now())
      // And for Prometheus, one series per origin away.
      expect(await (await fetch(mirror.url + '/metrics')).text()).toContain(`aimirror_upstream_away{origin="${up}"} 1`)
    } finally {
      await mirror.stop()
    }
  })

  /** What the node answers to bytes sent as they are, until it closes the connection. */
  const raw = async (request: Buffer | string): Promise<string> => await new Promise((resolve, reject) => {
    const { hostname, port } = new URL(node.url)
    const socket = connect(Number(port), hostname, () => { socket.end(request) })
    let got = ''
    socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
    socket.on('close', () => { resolve(got) })
    socket.on('error', reject)
  })

  it('a request the HTTP parser refuses gets the catalogue\'s JSON error: 400, or 431 for oversized headers', async () => {
    const bad = await raw(Buffer.concat([Buffer.from('GET /caf'), Buffer.from([0xc3, 0xa9]), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')]))
    expect(bad).toMatch(/^HTTP\/1\.1 400 /)
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'ERR_BAD_REQUEST' })
    const big = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expect(big).toMatch(/^HTTP\/1\.1 431 /)
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'ERR_BAD_REQUEST' })
  })
  it('an HTTP/1.1 request without a Host header gets the catalogue\'s JSON 400 with its reason; HTTP/1.0 needs none', async () => {
    const answer = await raw('GET /health HTTP/1.1\r\nConnection: close\r\n\r\n')
    expect(answer).toMatch(/^HTTP\/1\.1 400 /)
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'ERR_BAD_REQUEST', reason: 'missing_host' })
    const old = await raw('GET /health HTTP/1.0\r\n\r\n')
    expect(old).toMatch(/^HTTP\/1\.1 200 /)
  })
  it('CONNECT (a client told to use the node as an HTTPS proxy) gets a 405 that says what the node is', async () => {
    const answer = await raw('CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n')
    expect(answer).toMatch(/^HTTP\/1\.1 405 /)
    expect(answer).toMatch(/\r\nallow: GET/i)
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'ERR_METHOD_NOT_ALLOWED', reason: 'connect_not_supported' })
    // The node goes on serving.
    expect((await fetch(`${node.url}/health`)).status).toBe(200)
  })
})

describe('the node\'s polled paths in the log', () => {
  it('are not logged at info (a dashboard polls them every 2 s), the mirror\'s requests are', async () => {
    const lines: Array<{ msg?: string, url?: string }> = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as typeof lines[number]) } })
    const files = await startFileServer({ files: { '/files/a.bin': { size: 1000, seed: 2 } } })
    const node = await startTestNode({ rules: [{ name: 'all', path_prefix: '/files/', upstream: files.url, strategy: 'proxy' }] }, { logger })
    try {
      for (const path of ['/health', '/stats', '/metrics', '/cluster/stats', '/peers', '/dashboard']) expect((await fetch(node.url + path)).status).toBe(200)
      expect((await fetch(node.url + '/files/a.bin')).status).toBe(200)
    } finally {
      await node.stop()
      await files.close()
    }
    const urls = lines.filter(l => l.msg === 'request').map(l => l.url)
    expect(urls).toContain('/files/a.bin')
    expect(urls.filter(u => u !== '/files/a.bin')).toEqual([])
  })
})

describe('request ids in the log', () => {
  it('differ between two runs of a node, so lines of runs appended to one file are told apart', async () => {
    const ids: string[] = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { const id = (JSON.parse(line) as { reqId?: string }).reqId; if (id !== undefined) ids.push(id) } })
    const files = await startFileServer({ files: { '/files/a.bin': { size: 1000, seed: 2 } } })
    try {
      for (let run = 0; run < 2; run++) {
        const node = await startTestNode({ rules: [{ name: 'all', path_prefix: '/files/', upstream: files.url, strategy: 'proxy' }] }, { logger })
        try {
          expect((await fetch(node.url + '/files/a.bin')).status).toBe(200)
        } finally {
          await node.stop()
        }
      }
    } finally {
      await files.close()
    }
    const firsts = [...new Set(ids)]
    expect(firsts).toHaveLength(2)
    expect(firsts[0]).toMatch(/^[0-9a-f]{6}-1$/)
    expect(firsts[1]).toMatch(/^[0-9a-f]{6}-1$/)
    expect(firsts[0]).not.toBe(firsts[1])
  })
})
