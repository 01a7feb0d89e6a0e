import { pino } from 'pino'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'

const lines: Array<{ level: number, msg: string, code?: string, reason?: string, err?: { stack?: string } }> = []
let node: TestNode
let server: FileServer

beforeAll(async () => {
  server = await startFileServer({ files: { '/files/f.bin': { size: 1000, seed: 1 } } })
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
  node = await startTestNode({ rules: [{ name: 'files', path_prefix: '/files/', upstream: server.url, strategy: 'parallel' }] }, { logger })
})

afterAll(async () => {
  await node?.stop()
  await server?.close()
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
  expect(lines.some(l => l.level === 40 && l.msg === 'request failed' && l.code === 'ERR_UPSTREAM_UNREACHABLE')).toBe(true)
})
