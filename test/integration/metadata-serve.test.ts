import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { fastify } from 'fastify'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { Agent } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { handleError } from '../../node/http/error-handler.ts'
import { MetadataCache } from '../../node/metadata/cache.ts'
import { sendMetadata } from '../../node/metadata/serve.ts'
import { send } from '../helpers/client.ts'
import { startUpstream } from '../helpers/upstream.ts'
import type { FakeUpstream } from '../helpers/upstream.ts'

let dir: string
let agent: Agent
let cache: MetadataCache
let app: FastifyInstance
let base: string
let up: FakeUpstream
const state = { status: 200, body: 'x', ttlMs: 60_000 }

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aimirror-meta-serve-'))
  agent = new Agent({ headersTimeout: 2000, bodyTimeout: 2000, connectTimeout: 1000 })
  cache = new MetadataCache({ dispatcher: agent, logger: pino({ level: 'silent' }) }, { dir, staleGraceMs: 500 })
  await cache.start()
  state.status = 200
  state.body = JSON.stringify({ files: Array.from({ length: 200 }, (_, i) => ({ url: `https://files.example/p/f${i}.whl` })) })
  state.ttlMs = 60_000
  up = await startUpstream((req, res) => {
    res.writeHead(state.status, { 'content-type': 'application/json', 'cache-control': 'max-age=600', etag: '"up"' })
    res.end(state.body)
  })
  app = fastify()
  app.setErrorHandler(handleError)
  app.all('/*', async (request, reply) => {
    const result = await cache.fetch({ key: request.url, url: new URL(up.url + request.url), ttlMs: state.ttlMs, signal: AbortSignal.timeout(5000) })
    const rewritten = await cache.rewrite(result, { id: 'files->mirror', apply: b => Buffer.from(b.toString().replaceAll('https://files.example', '')) })
    await sendMetadata(cache, request, reply, rewritten, { vary: ['Accept'] })
    return reply
  })
  base = await app.listen({ host: '127.0.0.1', port: 0 })
})

afterEach(async () => {
  await app.close()
  await up.close()
  await cache.stop()
  await agent.close()
  await rm(dir, { recursive: true, force: true })
})

describe('serving metadata', () => {
  it('sends the rewritten body with length, ETag, Vary, and gzip only on request', async () => {
    const plain = await send(base, { path: '/doc' })
    expect(plain.status).toBe(200)
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.body.toString()).toContain('"url":"/p/f0.whl"')
    expect(Number(plain.headers['content-length'])).toBe(plain.body.length)
    expect(plain.headers.vary).toBe('Accept, Accept-Encoding')
    expect(plain.headers['cache-control']).toBe('max-age=600')
    expect(plain.headers.etag).not.toBe('"up"')
    const gz = await send(base, { path: '/doc', headers: { 'accept-encoding': 'gzip' } })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true)
    expect(gz.headers.etag).not.toBe(plain.headers.etag)
  })

  it('answers If-None-Match with 304, HEAD with the real length, Range with 206', async () => {
    const first = await send(base, { path: '/doc' })
    const etag = String(first.headers.etag)
    const nm = await send(base, { path: '/doc', headers: { 'if-none-match': etag } })
    expect(nm.status).toBe(304)
    expect(nm.body.length).toBe(0)
    expect(nm.headers.etag).toBe(etag)
    const head = await send(base, { path: '/doc', method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(first.body.length))
    const part = await send(base, { path: '/doc', headers: { range: 'bytes=2-5' } })
    expect(part.status).toBe(206)
    expect(part.headers['content-range']).toBe(`bytes 2-5/${first.body.length}`)
    expect(part.body.equals(first.body.subarray(2, 6))).toBe(true)
  })

  it('marks stale answers and replays a remembered 404 while upstream is down', async () => {
    await send(base, { path: '/doc' })
    state.status = 404
    state.body = 'no such project'
    state.ttlMs = 0
    const gone = await send(base, { path: '/gone' })
    expect(gone.status).toBe(404)
    await up.close()
    const stale = await send(base, { path: '/doc' })
    expect(stale.status).toBe(200)
    expect(stale.headers.warning).toBe('110 - "Response is Stale"')
    expect(stale.headers['x-aimirror-stale']).toBe('1')
    const replay = await send(base, { path: '/gone' })
    expect(replay.status).toBe(404)
    expect(replay.body.toString()).toBe('no such project')
    expect(replay.headers['x-aimirror-stale']).toBe('1')
    const never = await send(base, { path: '/never-asked' })
    expect(never.status).toBe(502)
    expect(JSON.parse(never.body.toString())).toMatchObject({ error: 'ERR_UPSTREAM_UNREACHABLE' })
  })
})
