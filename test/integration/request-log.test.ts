import { Writable } from 'node:stream'
import { createLogger } from '../../node/log.ts'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'

interface Line { level: number, msg: string, code?: string, cause?: string, reason?: string, err?: { stack?: string }, method?: string, url?: string, status?: number, cache?: string, bytes?: number, ms?: number }
const lines: Line[] = []
let node: TestNode
let server: FileServer

beforeAll(async () => {
  server = await startFileServer({ files: { '/files/f.bin': { size: 1000, seed: 1 } } })
  // The node's own logger (its serializers redact credentials in URLs).
  const sink = new Writable({ write (chunk: Buffer, _encoding, cb) { for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line) as Line); cb() } })
  const logger = createLogger({ level: 'info', file: null }, sink)
  node = await startTestNode({ rules: [{ name: 'files', path_prefix: '/files/', upstream: server.url, strategy: 'parallel' }] }, { logger })
})

afterAll(async () => {
  await node?.stop()
  await server?.close()
})

it('each request is one line when it ends, with its status, bytes, time and whether the cache had it (X-Cache)', async () => {
  await fetch(`${node.url}/health`)
  const first = await fetch(`${node.url}/files/f.bin?token=s3cret`)
  expect(first.headers.get('x-cache')).toBe('MISS')
  await first.arrayBuffer()
  await expect.poll(async () => ((await (await fetch(`${node.url}/stats`)).json()) as { cache: { file_count: number } }).cache.file_count).toBe(1)
  const again = await fetch(`${node.url}/files/f.bin?token=s3cret`)
  expect(again.headers.get('x-cache')).toBe('HIT')
  await again.arrayBuffer()
  await new Promise(resolve => setTimeout(resolve, 50))
  const requests = lines.filter(l => l.msg === 'request' && l.url?.startsWith('/files/f.bin') === true)
  expect(requests.map(l => [l.method, l.url, l.status, l.cache])).toEqual([
    ['GET', '/files/f.bin?token=[redacted]', 200, 'MISS'],
    ['GET', '/files/f.bin?token=[redacted]', 200, 'HIT']
  ])
  for (const l of requests) {
    expect(l.bytes).toBeGreaterThan(1000)
    expect(l.ms).toBeGreaterThanOrEqual(0)
  }
  // Polled by dashboards: not logged.
  expect(lines.some(l => l.url === '/health')).toBe(false)
  // Fastify's own pair of lines is gone.
  expect(lines.some(l => l.msg === 'incoming request' || l.msg === 'request completed')).toBe(false)
})

it('a client\'s bad request is one info line with its reason, no stack; an upstream failure stays a warning', async () => {
  expect((await fetch(`${node.url}/nothing/here`)).status).toBe(404)
  expect((await fetch(`${node.url}/files/f.bin`, { headers: { range: 'bytes=5000-' } })).status).toBe(416)
  const refused = lines.filter(l => l.msg === 'request refused')
  expect(refused.map(l => [l.level, l.code])).toEqual([[30, 'ERR_NO_ROUTE']])
  expect(refused[0]?.reason).toBe('No rule matches this path')
  expect(refused.some(l => l.err !== undefined)).toBe(false)
  expect(lines.filter(l => l.level >= 40)).toEqual([])

  await server.close()
  expect((await fetch(`${node.url}/files/other.bin`)).status).toBe(502)
  const failed = lines.filter(l => l.level === 40 && l.msg === 'request failed' && l.code === 'ERR_UPSTREAM_UNREACHABLE')
  expect(failed).toHaveLength(1)
  // Routine for a mirror: the reason and its cause, no stack.
  expect(failed[0]).toMatchObject({ status: 502, cause: 'ECONNREFUSED' })
  expect(failed[0]?.err).toBeUndefined()
})
