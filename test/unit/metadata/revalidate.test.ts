import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { Agent } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MetadataCache } from '../../../node/metadata/cache.ts'
import { clientHasCopy, clientRevalidates } from '../../../node/metadata/client-revalidate.ts'
import { rawValues, startUpstream } from '../../helpers/upstream.ts'
import type { FakeUpstream } from '../../helpers/upstream.ts'

let dir: string
let agent: Agent
const closers: Array<() => Promise<void>> = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aimirror-meta-reval-'))
  agent = new Agent({ headersTimeout: 2000, bodyTimeout: 2000, connectTimeout: 1000 })
})
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
  await agent.close()
  await rm(dir, { recursive: true, force: true })
})

interface Doc { status: number, body: string, etag: string, delayMs: number }

async function setup (doc: Doc, staleGraceMs = 2000): Promise<{ up: FakeUpstream, c: MetadataCache }> {
  const up = await startUpstream(async (req, res) => {
    if (doc.delayMs > 0) await new Promise(resolve => setTimeout(resolve, doc.delayMs))
    const h = { 'content-type': 'application/json', etag: doc.etag }
    if (doc.status === 200 && req.headers['if-none-match'] === doc.etag) { res.writeHead(304, h); res.end(); return }
    res.writeHead(doc.status, { ...h, 'content-length': String(Buffer.byteLength(doc.body)) })
    res.end(doc.body)
  })
  closers.push(async () => await up.close())
  const c = new MetadataCache({ dispatcher: agent, logger: pino({ level: 'silent' }) }, { dir: join(dir, 'metadata'), staleGraceMs })
  await c.start()
  closers.push(async () => await c.stop())
  return { up, c }
}

const req = (url: string, revalidate: boolean): { key: string, url: URL, ttlMs: number, revalidate: boolean } =>
  ({ key: 'k', url: new URL(url), ttlMs: 600_000, revalidate })

describe('client-requested revalidation', () => {
  it.each([
    [{ 'cache-control': 'max-age=0' }, true],
    [{ 'cache-control': 'no-cache' }, true],
    [{ 'cache-control': 'No-Cache, max-stale=0' }, true],
    [{ 'cache-control': 'max-age="0"' }, true],
    [{ 'cache-control': 'max-age=60' }, false],
    [{ 'cache-control': 'max-age=' }, false],
    [{ 'cache-control': 'only-if-cached' }, false],
    [{ pragma: 'no-cache' }, true],
    [{ pragma: 'no-cache', 'cache-control': 'max-age=60' }, false],
    [{}, false]
  ])('%j → %s', (headers, expected) => {
    expect(clientRevalidates(headers)).toBe(expected)
  })

  it('knows a conditional request', () => {
    expect(clientHasCopy({ 'if-none-match': '"a"' })).toBe(true)
    expect(clientHasCopy({ 'if-modified-since': new Date(0).toUTCString() })).toBe(true)
    expect(clientHasCopy({})).toBe(false)
  })

  it('confirms a fresh copy upstream with a conditional request and sees a new version', async () => {
    const doc: Doc = { status: 200, body: '{"v":1}', etag: '"a"', delayMs: 0 }
    const { up, c } = await setup(doc)
    const first = await c.fetch(req(up.url + '/doc', false))
    expect((await c.fetch(req(up.url + '/doc', false))).fromCache).toBe(true)
    expect(up.seen).toHaveLength(1)
    const confirmed = await c.fetch(req(up.url + '/doc', true))
    expect(up.seen).toHaveLength(2)
    expect(rawValues(up.seen[1]?.rawHeaders ?? [], 'if-none-match')).toEqual(['"a"'])
    expect(confirmed.fromCache).toBe(false)
    expect(confirmed.stale).toBe(false)
    expect(confirmed.etag).toBe(first.etag)
    doc.body = '{"v":2}'
    doc.etag = '"b"'
    const changed = await c.fetch(req(up.url + '/doc', true))
    expect((await changed.body.read()).toString()).toBe('{"v":2}')
    // The refreshed copy is what clients that do not ask for revalidation get next.
    expect((await (await c.fetch(req(up.url + '/doc', false))).body.read()).toString()).toBe('{"v":2}')
    expect(up.seen).toHaveLength(3)
  })

  it('rechecks a remembered 404 too', async () => {
    const doc: Doc = { status: 404, body: 'nope', etag: '"x"', delayMs: 0 }
    const { up, c } = await setup(doc)
    expect((await c.fetch(req(up.url + '/p', false))).status).toBe(404)
    doc.status = 200
    doc.body = 'published'
    doc.etag = '"y"'
    expect((await c.fetch(req(up.url + '/p', false))).status).toBe(404)
    const now = await c.fetch(req(up.url + '/p', true))
    expect(now.status).toBe(200)
    expect((await now.body.read()).toString()).toBe('published')
  })

  it('still serves the copy, marked stale, when upstream fails, is slow or is gone', async () => {
    const doc: Doc = { status: 200, body: 'hello', etag: '"a"', delayMs: 0 }
    const { up, c } = await setup(doc, 300)
    await c.fetch(req(up.url + '/doc', false))
    doc.status = 503
    const on503 = await c.fetch(req(up.url + '/doc', true))
    expect(on503.status).toBe(200)
    expect(on503.stale).toBe(true)
    expect(on503.headers.warning).toBe('110 - "Response is Stale"')
    expect((await on503.body.read()).toString()).toBe('hello')
    doc.status = 200
    doc.delayMs = 1500
    expect((await c.fetch(req(up.url + '/doc', true))).stale).toBe(true)
    await up.close()
    const down = await c.fetch(req(up.url + '/doc', true))
    expect(down.stale).toBe(true)
    expect(down.headers['x-aimirror-stale']).toBe('1')
  })
})
