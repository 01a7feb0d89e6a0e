import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { OverloadedError, UpstreamTimeoutError } from '../../../node/errors.ts'
import { createHandlerRegistry } from '../../../node/handlers/registry.ts'
import { createHttpServer } from '../../../node/http/server.ts'
import type { HttpServerComponents } from '../../../node/http/server.ts'
import type { Strategy, StrategyContext } from '../../../node/http/strategy.ts'
import { createRouter } from '../../../node/router/router.ts'
import { makeConfig, makeRule } from '../../helpers/config.ts'

const rules = [
  makeRule({ name: 'big', path_prefix: '/big/', upstream: 'https://files.example', strategy: 'parallel' }),
  makeRule({ name: 'hooked', path_prefix: '/hooked/', upstream: 'https://hooked.example', handler: 'oci' }),
  makeRule({ name: 'rest', pattern: '^/rest/', upstream: 'https://rest.example/base' })
]

const seen: Array<{ via: string, ctx: StrategyContext, abortedAtCall: boolean }> = []
const recorder = (via: string): Strategy => async (ctx) => {
  seen.push({ via, ctx, abortedAtCall: ctx.signal.aborted })
  ctx.reply.code(200).header('content-type', 'text/plain')
  await ctx.reply.send(`${via} ${ctx.upstreamUrl.href}`)
}

const apps: Array<{ close: () => Promise<unknown> }> = []
afterEach(async () => {
  seen.length = 0
  for (const a of apps.splice(0)) await a.close()
})

function server (over: Partial<HttpServerComponents> = {}, publicHost: string | null = null, cacheDir?: string): ReturnType<typeof createHttpServer> {
  const config = makeConfig({ rules, server: { public_host: publicHost }, cacheDir })
  const app = createHttpServer({
    config,
    logger: pino({ level: 'silent' }),
    router: createRouter(config.rules),
    handlers: createHandlerRegistry(),
    strategies: { proxy: recorder('proxy') },
    ...over
  })
  apps.push(app)
  return app
}

describe('createHttpServer', () => {
  it('serves parallel rules with proxy until a parallel strategy is supplied', async () => {
    const res = await server().inject({ url: '/big/a.bin' })
    expect(res.body).toBe('proxy https://files.example/big/a.bin')
    const res2 = await server({ strategies: { proxy: recorder('proxy'), parallel: recorder('parallel') } }).inject({ url: '/big/a.bin' })
    expect(res2.body).toBe('parallel https://files.example/big/a.bin')
    const res3 = await server({ strategies: { proxy: recorder('proxy'), parallel: recorder('parallel') } }).inject({ url: '/rest/x?q=1' })
    expect(res3.body).toBe('proxy https://rest.example/base/rest/x?q=1')
  })

  it('builds the context: rule, upstream URL, mirror base from Host or public_host, a live signal', async () => {
    await server().inject({ url: '/rest/x', headers: { host: '10.0.0.5:8081' } })
    const ctx = seen[0]?.ctx
    expect(ctx?.rule.name).toBe('rest')
    expect(ctx?.mirrorBase).toBe('http://10.0.0.5:8081')
    expect(seen[0]?.abortedAtCall).toBe(false)
    expect(ctx?.signal.aborted).toBe(false) // a finished response is not an abort
    await server({}, 'https://mirror.example/base/').inject({ url: '/rest/x', headers: { host: 'ignored:1' } })
    expect(seen[1]?.ctx.mirrorBase).toBe('https://mirror.example/base')
  })

  it('lets a handler answer before the strategy, or pass', async () => {
    let answer = true
    const handlers = createHandlerRegistry({
      oci: {
        name: 'oci',
        handle: async (ctx) => {
          if (!answer) return false
          await ctx.reply.code(200).send({ handled: ctx.rule.name })
          return true
        }
      }
    })
    const app = server({ handlers })
    expect((await app.inject({ url: '/hooked/v2/' })).json()).toEqual({ handled: 'hooked' })
    expect(seen).toHaveLength(0)
    answer = false
    expect((await app.inject({ url: '/hooked/v2/' })).body).toBe('proxy https://hooked.example/hooked/v2/')
  })

  it('passes every method to the catch-all, bodies unread', async () => {
    let body = ''
    const reader: Strategy = async (ctx) => {
      for await (const chunk of ctx.request.raw) body += String(chunk)
      await ctx.reply.code(204).send()
    }
    const app = server({ strategies: { proxy: reader } })
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
      body = ''
      const res = await app.inject({ method, url: '/rest/x', headers: { 'content-type': 'application/json' }, payload: '{"a":1}' })
      expect(res.statusCode, method).toBe(204)
      if (method !== 'DELETE' && method !== 'OPTIONS') expect(body, method).toBe('{"a":1}')
    }
  })

  it('maps errors to JSON with a status, dropping headers set for the failed body', async () => {
    const failing = (err: Error): Strategy => async (ctx) => {
      ctx.reply.header('content-length', '999').header('etag', '"stale"').header('content-encoding', 'gzip')
      throw err
    }
    const timeout = await server({ strategies: { proxy: failing(new UpstreamTimeoutError()) } }).inject({ url: '/rest/x' })
    expect(timeout.statusCode).toBe(504)
    expect(timeout.json()).toMatchObject({ error: 'ERR_UPSTREAM_TIMEOUT' })
    expect(timeout.headers.etag).toBeUndefined()
    expect(timeout.headers['content-encoding']).toBeUndefined()
    const busy = await server({ strategies: { proxy: failing(new OverloadedError()) } }).inject({ url: '/rest/x' })
    expect(busy.statusCode).toBe(503)
    expect(busy.headers['retry-after']).toBeDefined()
    const bug = await server({ strategies: { proxy: failing(new TypeError('secret internals')) } }).inject({ url: '/rest/x' })
    expect(bug.statusCode).toBe(500)
    expect(bug.json()).toEqual({ error: 'ERR_INTERNAL', message: 'Internal error' })
  })

  it('answers unmatched paths 404 and escaping paths 400, without calling a strategy', async () => {
    const app = server()
    const none = await app.inject({ url: '/nowhere' })
    expect(none.statusCode).toBe(404)
    expect(none.json()).toMatchObject({ error: 'ERR_NO_ROUTE', path: '/nowhere' })
    const esc = await app.inject({ url: '/rest/..%2Fx' })
    expect(esc.statusCode).toBe(400)
    expect(esc.json()).toMatchObject({ error: 'ERR_BAD_REQUEST', reason: 'dot_segment' })
    const badEncoding = await app.inject({ url: '/rest/%E0%A4%A' })
    expect(badEncoding.statusCode).toBe(400)
    expect(badEncoding.json()).toMatchObject({ error: 'ERR_BAD_REQUEST' })
    const badHost = await app.inject({ url: '/rest/x', headers: { host: 'a b' } })
    expect(badHost.statusCode).toBe(400)
    expect(seen).toHaveLength(0)
  })

  it('serves /health from the downloads provider', async () => {
    const app = server({ downloads: { list: () => ['key-a', 'key-b'] } })
    const res = await app.inject({ url: '/health' })
    expect(res.json()).toEqual({ status: 'ok', active_downloads: 2, downloads: ['key-a', 'key-b'], progress: [], upstreams_away: [] })
    expect((await server().inject({ url: '/health' })).json()).toEqual({ status: 'ok', active_downloads: 0, downloads: [], progress: [], upstreams_away: [] })
    // Downloads with progress: their keys in `downloads` (the seed's list of cache keys), the rest in `progress`.
    const withProgress = server({ downloads: { list: () => [{ key: 'url:http://u/f', received: 5 }] } })
    expect((await withProgress.inject({ url: '/health' })).json()).toEqual({ status: 'ok', active_downloads: 1, downloads: ['url:http://u/f'], progress: [{ key: 'url:http://u/f', received: 5 }], upstreams_away: [] })
  })

  it('serves /stats from the provider, else by walking the cache dir', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-stats-'))
    try {
      await mkdir(join(dir, 'blobs', 'ab'), { recursive: true })
      await writeFile(join(dir, 'blobs', 'ab', 'one'), Buffer.alloc(1024 * 1024))
      await writeFile(join(dir, 'two'), Buffer.alloc(512 * 1024))
      const walked = (await server({}, null, dir).inject({ url: '/stats' })).json() as { cache: Record<string, unknown> }
      expect(walked.cache).toMatchObject({ file_count: 2, total_size_mb: 1.5, total_size_bytes: 1.5 * 1024 * 1024 })
      const provided = await server({ cacheStats: () => ({ total_size_mb: 7, file_count: 3, hits: 1 }) }).inject({ url: '/stats' })
      expect(provided.json()).toEqual({ cache: { total_size_mb: 7, file_count: 3, hits: 1 } })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('reserves the admin paths before rule matching', async () => {
    const catchAll = [makeRule({ name: 'all', pattern: '.*', upstream: 'https://up.example' })]
    const config = makeConfig({ rules: catchAll })
    const app = createHttpServer({
      config, logger: pino({ level: 'silent' }), router: createRouter(catchAll), handlers: createHandlerRegistry(), strategies: { proxy: recorder('proxy') }
    })
    apps.push(app)
    expect((await app.inject({ url: '/health?x=1' })).json()).toMatchObject({ status: 'ok' })
    const refused = await app.inject({ method: 'DELETE', url: '/stats' })
    expect(refused.statusCode).toBe(405)
    expect(refused.headers.allow).toBe('GET, HEAD')
    expect(seen).toHaveLength(0)
  })
})
