import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { pino } from 'pino'
import { Agent } from 'undici'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { UpstreamUnreachableError } from '../../../node/errors.ts'
import { MetadataCache } from '../../../node/metadata/cache.ts'
import type { MetadataCacheInit } from '../../../node/metadata/cache.ts'
import type { MetadataResult } from '../../../node/metadata/types.ts'
import { deadPort, rawValues, startUpstream } from '../../helpers/upstream.ts'
import type { FakeUpstream, UpstreamHandler } from '../../helpers/upstream.ts'

interface Doc { status: number, body: string, etag?: string, gzip?: boolean, delayMs?: number, headers?: Record<string, string> }

let dir: string
let agent: Agent
const closers: Array<() => Promise<void>> = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aimirror-meta-'))
  agent = new Agent({ headersTimeout: 2000, bodyTimeout: 2000, connectTimeout: 1000 })
})
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
  await agent.close()
  await rm(dir, { recursive: true, force: true })
})

async function cache (init: Partial<MetadataCacheInit> = {}): Promise<MetadataCache> {
  const c = new MetadataCache({ dispatcher: agent, logger: pino({ level: 'silent' }) }, { dir: join(dir, 'metadata'), ...init })
  await c.start()
  closers.push(async () => await c.stop())
  return c
}

/** An upstream serving one mutable document with an ETag, honouring If-None-Match. */
async function upstream (doc: Doc): Promise<FakeUpstream> {
  const handler: UpstreamHandler = async (req, res) => {
    if (doc.delayMs !== undefined) await new Promise(resolve => setTimeout(resolve, doc.delayMs))
    const h: Record<string, string> = { 'content-type': 'application/json', ...doc.headers }
    if (doc.etag !== undefined) h.etag = doc.etag
    if (doc.etag !== undefined && req.headers['if-none-match'] === doc.etag) { res.writeHead(304, h); res.end(); return }
    let body: Buffer = Buffer.from(doc.body)
    if (doc.gzip === true && /gzip/.test(req.headers['accept-encoding'] ?? '')) { body = gzipSync(body); h['content-encoding'] = 'gzip' }
    h['content-length'] = String(body.length)
    res.writeHead(doc.status, h)
    res.end(body)
  }
  const up = await startUpstream(handler)
  closers.push(async () => await up.close())
  return up
}

async function text (r: MetadataResult): Promise<string> {
  return (await r.body.read()).toString('utf8')
}

const req = (url: string, ttlMs = 60_000, key = 'k'): { key: string, url: URL, ttlMs: number } => ({ key, url: new URL(url), ttlMs })

describe('metadata cache', () => {
  it('caches a 200 for its TTL and serves it without asking upstream', async () => {
    const up = await upstream({ status: 200, body: '{"v":1}', etag: '"a"' })
    const c = await cache()
    const first = await c.fetch(req(up.url + '/doc'))
    expect(first.status).toBe(200)
    expect(first.fromCache).toBe(false)
    expect(await text(first)).toBe('{"v":1}')
    expect(first.headers['content-type']).toBe('application/json')
    const second = await c.fetch(req(up.url + '/doc'))
    expect(second.fromCache).toBe(true)
    expect(second.stale).toBe(false)
    expect(second.etag).toBe(first.etag)
    expect(up.seen).toHaveLength(1)
  })

  it('revalidates with If-None-Match after the TTL; a 304 refreshes the entry', async () => {
    const doc: Doc = { status: 200, body: '{"v":1}', etag: '"a"' }
    const up = await upstream(doc)
    const c = await cache()
    const first = await c.fetch(req(up.url + '/doc', 0))
    const again = await c.fetch(req(up.url + '/doc', 0))
    expect(up.seen).toHaveLength(2)
    expect(rawValues(up.seen[1]?.rawHeaders ?? [], 'if-none-match')).toEqual(['"a"'])
    expect(again.fromCache).toBe(false)
    expect(again.etag).toBe(first.etag)
    expect(again.info?.fetchedAt).toBeGreaterThanOrEqual(first.info?.fetchedAt ?? Infinity)
    doc.body = '{"v":2}'
    doc.etag = '"b"'
    const changed = await c.fetch(req(up.url + '/doc', 0))
    expect(await text(changed)).toBe('{"v":2}')
    expect(changed.etag).not.toBe(first.etag)
  })

  it('makes one upstream request for concurrent misses', async () => {
    const up = await upstream({ status: 200, body: 'x'.repeat(5000), delayMs: 100 })
    const c = await cache()
    const all = await Promise.all(Array.from({ length: 8 }, async () => await c.fetch(req(up.url + '/doc'))))
    expect(up.seen).toHaveLength(1)
    for (const r of all) expect(r.body.size).toBe(5000)
  })

  it('serves stale with warning headers when upstream is unreachable, 5xx or slow', async () => {
    const doc: Doc = { status: 200, body: 'hello', etag: '"a"' }
    const up = await upstream(doc)
    const c = await cache({ staleGraceMs: 200 })
    const first = await c.fetch(req(up.url + '/doc', 0))
    doc.status = 503
    doc.etag = undefined
    const on503 = await c.fetch(req(up.url + '/doc', 0))
    expect(on503.status).toBe(200)
    expect(on503.stale).toBe(true)
    expect(on503.headers.warning).toBe('110 - "Response is Stale"')
    expect(on503.headers['x-aimirror-stale']).toBe('1')
    expect(on503.etag).toBe(first.etag)
    expect(await text(on503)).toBe('hello')
    doc.status = 200
    doc.delayMs = 1500
    const slow = await c.fetch(req(up.url + '/doc', 0))
    expect(slow.stale).toBe(true)
    await up.close()
    const down = await c.fetch(req(up.url + '/doc', 0))
    expect(down.stale).toBe(true)
    expect(await text(down)).toBe('hello')
  })

  it('does not wait again for an upstream that just failed to answer, until it answers', async () => {
    const doc: Doc = { status: 200, body: 'hello', etag: '"a"' }
    const up = await upstream(doc)
    const c = await cache({ staleGraceMs: 500 })
    for (const key of ['a', 'b', 'c']) await c.fetch(req(`${up.url}/${key}`, 0, key))
    // Hung: every exchange times out (headers timeout 2 s, give or take undici's coarse timers).
    doc.delayMs = 60_000
    const timed = async (key: string): Promise<{ ms: number, stale: boolean }> => {
      const t0 = Date.now()
      const r = await c.fetch(req(`${up.url}/${key}`, 0, key))
      return { ms: Date.now() - t0, stale: r.stale }
    }
    const first = await timed('a')
    expect(first.stale).toBe(true)
    expect(first.ms).toBeGreaterThanOrEqual(450)
    // It let the grace time pass: the other documents come at once, stale.
    expect(c.away.isAway(new URL(up.url).origin)).toBe(true)
    const second = await timed('b')
    expect(second).toMatchObject({ stale: true })
    expect(second.ms).toBeLessThan(300)
    // Asked again in the background all the same (that request hangs too): an answer ends the away time.
    for (let i = 0; i < 100 && up.seen.filter(r => r.url === '/b').length < 2; i++) await new Promise(resolve => setTimeout(resolve, 20))
    doc.delayMs = 0
    const third = await timed('c')
    expect(third).toMatchObject({ stale: true })
    expect(third.ms).toBeLessThan(300)
    let fresh = false
    for (let i = 0; i < 50 && !fresh; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      fresh = !(await timed('c')).stale
    }
    expect(fresh).toBe(true)
    // The hung exchanges asked before that answer end later, timed out: they do not make it away again.
    await new Promise(resolve => setTimeout(resolve, 3500))
    expect(c.away.isAway(new URL(up.url).origin)).toBe(false)
  })

  it('serves another representation the client takes at once while the upstream is away', async () => {
    const doc: Doc = { status: 200, body: '<html>', etag: '"h"' }
    const up = await upstream(doc)
    const c = await cache({ staleGraceMs: 500 })
    await c.fetch(req(`${up.url}/p`, 60_000, 'html'))
    doc.delayMs = 60_000
    c.away.failed(new URL(up.url).origin, new UpstreamUnreachableError())
    const t0 = Date.now()
    const r = await c.fetch({ ...req(`${up.url}/p`, 60_000, 'json'), alternates: ['html'] })
    expect(Date.now() - t0).toBeLessThan(300)
    expect(r.stale).toBe(true)
    expect(await text(r)).toBe('<html>')
  })

  it('remembers a real 404 and replays it while upstream is down', async () => {
    const up = await upstream({ status: 404, body: 'not here' })
    const c = await cache()
    const miss = await c.fetch({ ...req(up.url + '/gone', 0), negativeTtlMs: 0 })
    expect(miss.status).toBe(404)
    expect(miss.stale).toBe(false)
    await up.close()
    const replay = await c.fetch({ ...req(up.url + '/gone', 0), negativeTtlMs: 0 })
    expect(replay.status).toBe(404)
    expect(replay.stale).toBe(true)
    expect(await text(replay)).toBe('not here')
  })

  it('asks again about a 404 after a few seconds, whatever the TTL: a package published after a miss is found', async () => {
    const doc: Doc = { status: 404, body: 'not yet' }
    const up = await upstream(doc)
    const c = await cache()
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      expect((await c.fetch(req(up.url + '/fresh-pkg'))).status).toBe(404)
      Object.assign(doc, { status: 200, body: 'published' })
      // A burst right after the miss is answered from memory.
      expect((await c.fetch(req(up.url + '/fresh-pkg'))).status).toBe(404)
      expect(up.seen).toHaveLength(1)
      vi.setSystemTime(Date.now() + 5_500)
      const found = await c.fetch(req(up.url + '/fresh-pkg'))
      expect(found.status).toBe(200)
      expect(await text(found)).toBe('published')
    } finally {
      vi.useRealTimers()
    }
  })

  it('never invents a 404: nothing cached and upstream down is an upstream error', async () => {
    const c = await cache()
    const port = await deadPort()
    await expect(c.fetch(req(`http://127.0.0.1:${port}/never`))).rejects.toMatchObject({ code: 'ERR_UPSTREAM_UNREACHABLE' })
  })

  it('passes other statuses through uncached, and a 5xx with nothing cached as it is', async () => {
    const doc: Doc = { status: 401, body: 'auth', headers: { 'www-authenticate': 'Bearer realm="x"' } }
    const up = await upstream(doc)
    const c = await cache()
    const r = await c.fetch(req(up.url + '/private'))
    expect(r.status).toBe(401)
    expect(r.etag).toBeNull()
    expect(r.headers['www-authenticate']).toBe('Bearer realm="x"')
    expect(await text(r)).toBe('auth')
    expect(await c.gzip(r)).toBeNull()
    const rewritten = await c.rewrite(r, { id: 'x', apply: b => Buffer.concat([b, Buffer.from('!')]) })
    expect(await text(rewritten)).toBe('auth!')
    expect(await c.gzip(rewritten)).toBeNull()
    doc.status = 502
    const bad = await c.fetch(req(up.url + '/private'))
    expect(bad.status).toBe(502)
    expect(up.seen).toHaveLength(2)
  })

  it('stores gzip bodies decoded', async () => {
    const up = await upstream({ status: 200, body: 'z'.repeat(10_000), gzip: true })
    const c = await cache()
    const r = await c.fetch(req(up.url + '/doc'))
    expect(r.body.size).toBe(10_000)
    expect(r.headers['content-encoding']).toBeUndefined()
    expect(await text(r)).toBe('z'.repeat(10_000))
  })

  it('a 404 after a 200 replaces the entry (the document was removed upstream)', async () => {
    const doc: Doc = { status: 200, body: 'here' }
    const up = await upstream(doc)
    const c = await cache()
    await c.fetch(req(up.url + '/doc', 0))
    doc.status = 404
    const r = await c.fetch(req(up.url + '/doc', 0))
    expect(r.status).toBe(404)
    expect(r.stale).toBe(false)
  })

  it('derives rewritten and gzip variants once, each with its own ETag', async () => {
    const up = await upstream({ status: 200, body: 'see https://up.example/x and more text'.repeat(50) })
    const c = await cache()
    let calls = 0
    const rw = { id: 'up->mirror', apply: (b: Buffer) => { calls++; return Buffer.from(b.toString().replaceAll('https://up.example', '/m')) } }
    const base = await c.fetch(req(up.url + '/doc'))
    const one = await c.rewrite(base, rw)
    const two = await c.rewrite(await c.fetch(req(up.url + '/doc')), rw)
    expect(calls).toBe(1)
    expect(one.etag).not.toBe(base.etag)
    expect(two.etag).toBe(one.etag)
    expect((await text(two)).startsWith('see /m/x')).toBe(true)
    const gz = await c.gzip({ ...two, headers: { ...two.headers, location: '/moved' } })
    expect(gz?.etag).not.toBe(two.etag)
    expect(gz?.body.size).toBeLessThan(two.body.size)
  })

  it('derives a rewritten variant again once the hints were cleared, so the document\'s hints are learned again', async () => {
    const up = await upstream({ status: 200, body: 'see https://up.example/x' })
    const c = await cache({ maxHints: 2 })
    let calls = 0
    const rw = { id: 'learns', apply: async (b: Buffer) => { calls++; await c.remember([[`h${calls}a`, '1'], [`h${calls}b`, '2']]); return b } }
    const one = await c.rewrite(await c.fetch(req(up.url + '/doc')), rw)
    await c.rewrite(await c.fetch(req(up.url + '/doc')), rw)
    expect(calls).toBe(1)
    expect(await c.recall('h1a')).toBe('1')
    // Another document's two hints pass the bound: all are cleared.
    await c.remember([['other1', 'x'], ['other2', 'y']])
    expect(await c.recall('h1a')).toBeUndefined()
    const again = await c.rewrite(await c.fetch(req(up.url + '/doc')), rw)
    expect(calls).toBe(2)
    expect(await c.recall('h2a')).toBe('1')
    expect(again.etag).not.toBe(one.etag)
  })

  it('keeps a body in a coding it does not know as received: not rewritten, its header kept', async () => {
    const up = await upstream({ status: 200, body: 'see https://up.example/x', headers: { 'content-encoding': 'x-weird' } })
    const c = await cache()
    const base = await c.fetch(req(up.url + '/doc'))
    expect(base.headers['content-encoding']).toBe('x-weird')
    const out = await c.rewrite(base, { id: 'up->mirror', apply: (b: Buffer) => Buffer.from(b.toString().replaceAll('https://up.example', '/m')) })
    expect(await text(out)).toBe('see https://up.example/x')
    expect(out.headers['content-encoding']).toBe('x-weird')
  })

  it('keeps entries across a restart', async () => {
    const up = await upstream({ status: 200, body: 'persist' })
    const a = await cache()
    await a.fetch(req(up.url + '/doc'))
    await a.stop()
    const b = await cache()
    const r = await b.fetch(req(up.url + '/doc'))
    expect(r.fromCache).toBe(true)
    expect(await text(r)).toBe('persist')
    expect(up.seen).toHaveLength(1)
  })

  it('a HEAD check refreshes a stale entry without a GET', async () => {
    const up = await upstream({ status: 200, body: 'manifest', headers: { 'docker-content-digest': 'sha256:abc' } })
    const c = await cache()
    await c.fetch(req(up.url + '/m', 0))
    const r = await c.fetch({ ...req(up.url + '/m', 0), headCheck: (h, info) => h['docker-content-digest'] === info.headers['docker-content-digest'] })
    expect(r.fromCache).toBe(false)
    expect(up.seen.map(s => s.method)).toEqual(['GET', 'HEAD'])
  })

  it('removes replaced bodies after the grace period', async () => {
    const doc: Doc = { status: 200, body: 'one' }
    const up = await upstream(doc)
    const c = await cache({ bodyGraceMs: 10 })
    await c.fetch(req(up.url + '/doc', 0))
    doc.body = 'two'
    await c.fetch(req(up.url + '/doc', 0))
    const count = async (): Promise<number> => {
      let gens = 0
      for (const s of await readdir(join(dir, 'metadata', 'bodies'))) gens += (await readdir(join(dir, 'metadata', 'bodies', s))).length
      return gens
    }
    // The removal runs on a timer: poll for it, so a busy machine only makes the test slower.
    const deadline = Date.now() + 5000
    while (await count() !== 1 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    expect(await count()).toBe(1)
  })
})
