import { gunzipSync, gzipSync, brotliCompressSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { json, send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startUpstream } from '../helpers/upstream.ts'
import type { FakeUpstream } from '../helpers/upstream.ts'

const FILES = 'https://files.pythonhosted.org'

/** A PyPI-like index: PEP 503 HTML or PEP 691 JSON by Accept, gzip'd when the client allows it. */
function simplePage (accept: string, self: string): { type: string, body: string } {
  if (accept.includes('application/vnd.pypi.simple.v1+json')) {
    return {
      type: 'application/vnd.pypi.simple.v1+json',
      body: JSON.stringify({
        meta: { 'api-version': '1.1' },
        name: 'tinya',
        files: [{ filename: 'tinya-1.0-py3-none-any.whl', url: `${FILES}/packages/ab/cd/tinya-1.0-py3-none-any.whl`, hashes: { sha256: 'aa' } }],
        escaped: 'ESCAPED'
        // Some servers (PHP) escape slashes in JSON: "https:\/\/files.pythonhosted.org\/...".
      }).replace('ESCAPED', `${FILES}/packages/x.whl`.replace(/\//g, '\\/'))
    }
  }
  return {
    type: 'text/html; charset=utf-8',
    body: '<!DOCTYPE html><html><body>\n' +
      `<a href="${FILES}/packages/ab/cd/tinya-1.0-py3-none-any.whl#sha256=aa" data-requires-python="&gt;=3.8">tinya-1.0-py3-none-any.whl</a>\n` +
      `<a href="${self}/simple/tinyb/">tinyb</a>\n` +
      `<a href="${FILES}.evil.example/x">not ours</a> <a href="https://elsewhere.example/y">other</a> café\n` +
      '</body></html>\n'
  }
}

/** A page of 400 links under `base`, about 40 KB. */
function bigLinks (base: string): string {
  return Array.from({ length: 400 }, (_, i) => `<a href="${base}/${i}/f-${i}.whl">f-${i}</a><br/>\n`).join('')
}

describe('link rewriting', () => {
  let pypi: FakeUpstream
  let npm: FakeUpstream
  let node: TestNode

  beforeAll(async () => {
    pypi = await startUpstream((req, res) => {
      const url = req.url ?? '/'
      const self = `http://${req.headers.host ?? ''}`
      if (url.startsWith('/simple/')) {
        const page = simplePage(String(req.headers.accept ?? ''), self)
        const gzip = /gzip/.test(String(req.headers['accept-encoding'] ?? ''))
        const body = gzip ? gzipSync(page.body) : Buffer.from(page.body)
        res.writeHead(200, {
          'content-type': page.type,
          'content-length': body.length,
          etag: '"upstream-etag"',
          vary: 'Accept',
          'cache-control': 'max-age=600, public',
          ...(gzip ? { 'content-encoding': 'gzip' } : {})
        })
        res.end(req.method === 'HEAD' ? undefined : body)
        return
      }
      if (url === '/brotli/page') {
        const body = brotliCompressSync(`{"u":"${FILES}/packages/z.whl"}`)
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'br', 'content-length': body.length })
        res.end(body)
        return
      }
      if (url === '/packages/raw.whl') {
        // Byte-exact content that happens to contain a target URL: never touched.
        res.writeHead(200, { 'content-type': 'application/octet-stream', etag: '"whl"', link: `<${FILES}/packages/next>; rel="next"` })
        res.end(`PK\u0003\u0004 ${FILES}/packages/inside`)
        return
      }
      if (url === '/redirect/self') { res.writeHead(302, { location: `${self}/simple/moved/` }); res.end(); return }
      if (url === '/redirect/relative') { res.writeHead(301, { location: '/simple/rel/' }); res.end(); return }
      if (url === '/redirect/target') { res.writeHead(302, { location: `${FILES}/packages/t.whl` }); res.end(); return }
      if (url === '/redirect/offsite') { res.writeHead(302, { location: 'https://cdn.example/signed?sig=1' }); res.end(); return }
      if (url === '/ranged/index.html') {
        const page = Buffer.from(`<a href="${FILES}/packages/r.whl">r</a>`)
        const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
        if (m !== null) {
          const start = Number(m[1])
          const end = Math.min(Number(m[2]), page.length - 1)
          res.writeHead(206, { 'content-type': 'text/html', 'content-range': `bytes ${start}-${end}/${page.length}` })
          res.end(page.subarray(start, end + 1))
          return
        }
        res.writeHead(200, { 'content-type': 'text/html', 'accept-ranges': 'bytes' })
        res.end(page)
        return
      }
      if (url === '/api/plain.json') {
        const body = gzipSync('{"id":"gpt2","sha":"abc"}')
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length, etag: '"blob-sha"' })
        res.end(req.method === 'HEAD' ? undefined : body)
        return
      }
      if (url === '/big/page') {
        res.writeHead(200, { 'content-type': 'text/html' })
        res.end(`<a href="${FILES}/x">x</a>` + 'y'.repeat(5000))
        return
      }
      if (url === '/big/gzipped') {
        // Small on the wire, over the cap once decoded.
        const body = gzipSync(bigLinks(`${FILES}/packages`))
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip', 'content-length': body.length, etag: '"big-1"' })
        res.end(req.method === 'HEAD' ? undefined : body)
        return
      }
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('nope')
    })
    npm = await startUpstream((req, res) => {
      const self = `http://${req.headers.host ?? ''}`
      if (req.url === '/react') {
        res.writeHead(200, { 'content-type': 'application/vnd.npm.install-v1+json; charset=utf-8' })
        res.end(JSON.stringify({ name: 'react', versions: { '1.0.0': { dist: { tarball: `${self}/react/-/react-1.0.0.tgz`, integrity: 'sha512-x' } } } }))
        return
      }
      if (req.url === '/old-react') { res.writeHead(301, { location: '/react' }); res.end(); return }
      res.writeHead(404); res.end()
    })
    node = await startTestNode({
      content_rewrite: { content_types: ['text/html', 'application/json', 'application/vnd.pypi.simple'], targets: [FILES] },
      rules: [
        { name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: npm.url, content_rewrite: { content_types: ['application/vnd.npm.install-v1+json'], targets: [] } },
        { name: 'pypi', pattern: '.*', upstream: pypi.url }
      ]
    }, { proxyInit: { maxRewriteBytes: 4096 } })
  })
  afterAll(async () => {
    await node.stop()
    await pypi.close()
    await npm.close()
  })

  it('rewrites an HTML index gzip\'d by upstream to the Host the client used, sent uncompressed', async () => {
    const res = await send(node.url, { path: '/simple/tinya/', headers: { host: 'localhost:7777' } })
    expect(res.status).toBe(200)
    expect(res.headers['content-encoding']).toBeUndefined()
    const html = res.body.toString('utf8')
    expect(html).toContain('href="http://localhost:7777/packages/ab/cd/tinya-1.0-py3-none-any.whl#sha256=aa"')
    expect(html).toContain('href="http://localhost:7777/simple/tinyb/"')
    expect(html).toContain(`href="${FILES}.evil.example/x"`)
    expect(html).toContain('href="https://elsewhere.example/y"')
    expect(html).toContain('café')
    expect(res.headers['content-length']).toBe(String(res.body.length))
    expect(res.headers.etag).toMatch(/^W\/"/)
    expect(res.headers.vary).toMatch(/Accept,\s*Accept-Encoding/)
    expect(res.headers['cache-control']).toBe('max-age=600, public')
  })

  it('re-gzips for clients that accept gzip and answers If-None-Match with 304', async () => {
    const res = await send(node.url, { path: '/simple/tinya/', headers: { 'accept-encoding': 'gzip, deflate' } })
    expect(res.headers['content-encoding']).toBe('gzip')
    expect(res.headers['content-length']).toBe(String(res.body.length))
    expect(gunzipSync(res.body).toString()).toContain(`${node.url}/packages/ab/cd/`)
    const etag = res.headers.etag ?? ''
    const again = await send(node.url, { path: '/simple/tinya/', headers: { 'accept-encoding': 'gzip', 'if-none-match': etag } })
    expect(again.status).toBe(304)
    expect(again.body.length).toBe(0)
  })

  it('rewrites PEP 691 JSON (plain and \\/-escaped URLs) and brotli bodies', async () => {
    const res = await send(node.url, { path: '/simple/tinya/', headers: { accept: 'application/vnd.pypi.simple.v1+json', 'accept-encoding': 'gzip' } })
    const doc = JSON.parse(gunzipSync(res.body).toString()) as { files: Array<{ url: string }>, escaped: string }
    expect(doc.files[0]?.url).toBe(`${node.url}/packages/ab/cd/tinya-1.0-py3-none-any.whl`)
    expect(doc.escaped).toBe(`${node.url}/packages/x.whl`)
    const br = await send(node.url, { path: '/brotli/page' })
    expect(json(br)).toEqual({ u: `${node.url}/packages/z.whl` })
  })

  it('keeps the mount prefix for targets served under a stripped prefix (npm)', async () => {
    const res = await send(node.url, { path: '/npm/react' })
    const doc = json(res) as { versions: Record<string, { dist: { tarball: string } }> }
    expect(doc.versions['1.0.0']?.dist.tarball).toBe(`${node.url}/npm/react/-/react-1.0.0.tgz`)
    const moved = await send(node.url, { path: '/npm/old-react' })
    expect(moved.status).toBe(301)
    expect(moved.headers.location).toBe(`${node.url}/npm/react`)
  })

  it('honours X-Forwarded-Proto and X-Forwarded-Host', async () => {
    const res = await send(node.url, { path: '/simple/tinya/', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'mirror.example.lan' } })
    expect(res.body.toString()).toContain('href="https://mirror.example.lan/packages/ab/cd/')
    const bad = await send(node.url, { path: '/simple/tinya/', headers: { 'x-forwarded-host': 'evil"><script>' } })
    expect(bad.status).toBe(400)
  })

  it('answers HEAD on a rewritten page with the rewritten length', async () => {
    const get = await send(node.url, { path: '/simple/tinya/' })
    const head = await send(node.url, { method: 'HEAD', path: '/simple/tinya/' })
    expect(head.status).toBe(200)
    expect(head.body.length).toBe(0)
    expect(head.headers['content-length']).toBe(String(get.body.length))
    expect(head.headers.etag).toBe(get.headers.etag)
  })

  it('answers a Range request for a rewritable page with the whole rewritten page', async () => {
    const full = await send(node.url, { path: '/ranged/index.html' })
    expect(full.body.toString()).toBe(`<a href="${node.url}/packages/r.whl">r</a>`)
    const ranged = await send(node.url, { path: '/ranged/index.html', headers: { range: 'bytes=0-9' } })
    expect(ranged.status).toBe(200)
    expect(ranged.headers['content-range']).toBeUndefined()
    expect(ranged.body.equals(full.body)).toBe(true)
  })

  it('never touches byte-exact responses, but rewrites their Link header', async () => {
    const res = await send(node.url, { path: '/packages/raw.whl' })
    expect(res.body.toString()).toBe(`PK\u0003\u0004 ${FILES}/packages/inside`)
    expect(res.headers.etag).toBe('"whl"')
    expect(res.headers.link).toBe(`<${node.url}/packages/next>; rel="next"`)
  })

  it('rewrites redirect Locations to the upstream or a target, and leaves other hosts alone', async () => {
    expect((await send(node.url, { path: '/redirect/self' })).headers.location).toBe(`${node.url}/simple/moved/`)
    expect((await send(node.url, { path: '/redirect/relative' })).headers.location).toBe(`${node.url}/simple/rel/`)
    expect((await send(node.url, { path: '/redirect/target' })).headers.location).toBe(`${node.url}/packages/t.whl`)
    const off = await send(node.url, { path: '/redirect/offsite' })
    expect(off.status).toBe(302)
    expect(off.headers.location).toBe('https://cdn.example/signed?sig=1')
  })

  it('leaves link-bearing types without links byte-exact, with the upstream ETag and coding', async () => {
    const res = await send(node.url, { path: '/api/plain.json', headers: { 'accept-encoding': 'gzip' } })
    expect(res.headers.etag).toBe('"blob-sha"')
    expect(res.headers['content-encoding']).toBe('gzip')
    expect(res.body.equals(gzipSync('{"id":"gpt2","sha":"abc"}'))).toBe(true)
  })

  it('rewrites pages over the in-memory cap as they stream, without a length', async () => {
    const res = await send(node.url, { path: '/big/page' })
    expect(res.status).toBe(200)
    expect(res.body.toString()).toBe(`<a href="${node.url}/x">x</a>` + 'y'.repeat(5000))
    expect(res.headers['content-length']).toBeUndefined()
    expect(res.headers.etag).toBeUndefined()
  })

  it('streams a page that is over the cap only once decoded: gzip for who takes it, its ETag from the upstream\'s', async () => {
    const expected = bigLinks(`${node.url}/packages`)
    const plain = await send(node.url, { path: '/big/gzipped' })
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.body.toString()).toBe(expected)
    const gz = await send(node.url, { path: '/big/gzipped', headers: { 'accept-encoding': 'gzip' } })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gz.body).toString()).toBe(expected)
    const etag = String(gz.headers.etag)
    expect(etag).toMatch(/^W\/"rs-/)
    expect(plain.headers.etag).toBe(etag)
    expect(plain.headers.vary).toContain('Accept-Encoding')
    expect((await send(node.url, { path: '/big/gzipped', headers: { 'if-none-match': etag } })).status).toBe(304)
    const head = await send(node.url, { path: '/big/gzipped', method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.body.length).toBe(0)
  })
})

describe('public_host', () => {
  it('uses server.public_host for links instead of the request Host', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(`<a href="${FILES}/packages/a.whl">a</a><a href="http://${req.headers.host ?? ''}/simple/b/">b</a>`)
    })
    const node = await startTestNode({
      server: { public_host: 'mirror.lan:8081' },
      content_rewrite: { targets: [FILES] },
      rules: [{ name: 'pypi', pattern: '.*', upstream: up.url }]
    })
    try {
      const res = await send(node.url, { path: '/simple/a/', headers: { host: 'localhost:1', 'x-forwarded-host': 'other.lan' } })
      expect(res.body.toString()).toBe('<a href="http://mirror.lan:8081/packages/a.whl">a</a><a href="http://mirror.lan:8081/simple/b/">b</a>')
    } finally {
      await node.stop()
      await up.close()
    }
  })
})
