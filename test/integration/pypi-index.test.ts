import { createHash } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { json, send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import { startUpstream } from '../helpers/upstream.ts'
import type { TestNode } from '../helpers/node.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { startPypiIndex } from '../fixtures/upstreams/pypi-index.ts'
import type { PypiIndex } from '../fixtures/upstreams/pypi-index.ts'

const JSON_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01'

let pypi: PypiIndex
let node: TestNode

async function startNode (): Promise<TestNode> {
  return await startTestNode({
    content_rewrite: { targets: [pypi.filesUrl] },
    rules: [
      { name: 'pypi-files', path_prefix: '/packages/', upstream: pypi.filesUrl, handler: 'pypi', strategy: 'parallel', min_size: 0, concurrency: 4 },
      { name: 'pypi-simple', path_prefix: '/simple/', upstream: pypi.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: 600 }
    ]
  })
}

beforeEach(async () => {
  pypi = await startPypiIndex({
    packages: [
      { name: 'tinya', version: '1.0', requires: ['tinyb>=1.0'], requiresPython: '>=3.7' },
      { name: 'tinyb', version: '1.0' },
      { name: 'Tiny_B', version: '1.1', padBytes: 1 << 20 }
    ]
  })
  node = await startNode()
})
afterEach(async () => {
  await node.stop()
  await pypi.close()
})

const indexRequests = (): number => pypi.seen.filter(s => s.listener === 'index').length

describe('PyPI index pages', () => {
  it('rewrites HTML file links to path-absolute mirror URLs, keeping fragments and data-* byte for byte', async () => {
    const res = await send(node.url, { path: '/simple/tinya/', headers: { accept: 'text/html' } })
    expect(res.status).toBe(200)
    const html = res.body.toString()
    const w = pypi.wheels.get('tinya-1.0-py3-none-any.whl')
    expect(w).toBeDefined()
    expect(html).toContain(`href="/packages/${w?.sha256.slice(0, 2)}/`)
    expect(html).toContain(`tinya-1.0-py3-none-any.whl#sha256=${w?.sha256}"`)
    expect(html).toContain('data-requires-python="&gt;=3.7"')
    expect(html).toContain(`data-core-metadata="sha256=${w?.metadataSha256}"`)
    expect(html).toContain('<meta name="pypi:repository-version" content="1.1">')
    expect(html).not.toContain(pypi.filesUrl)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(res.headers.vary).toContain('Accept')
  })

  it('serves PEP 691 JSON by Accept, cached per representation, hashes untouched', async () => {
    const j = await send(node.url, { path: '/simple/tinya/', headers: { accept: JSON_ACCEPT } })
    expect(j.headers['content-type']).toBe('application/vnd.pypi.simple.v1+json')
    const doc = json(j) as { files: Array<{ url: string, hashes: { sha256: string }, 'core-metadata': { sha256: string } }> }
    const w = pypi.wheels.get('tinya-1.0-py3-none-any.whl')
    expect(doc.files[0]?.url).toBe(`/packages/${w?.sha256.slice(0, 2)}/${w?.sha256.slice(2, 4)}/${w?.sha256.slice(4, 16)}/tinya-1.0-py3-none-any.whl`)
    expect(doc.files[0]?.hashes.sha256).toBe(w?.sha256)
    expect(doc.files[0]?.['core-metadata'].sha256).toBe(w?.metadataSha256)
    await send(node.url, { path: '/simple/tinya/', headers: { accept: 'text/html' } })
    await send(node.url, { path: '/simple/tinya/', headers: { accept: JSON_ACCEPT } })
    await send(node.url, { path: '/simple/tinya/' })
    expect(indexRequests()).toBe(2)
  })

  it('redirects names not in normal form, answers If-None-Match with 304', async () => {
    const r = await send(node.url, { path: '/simple/Tiny_B' })
    expect(r.status).toBe(301)
    expect(r.headers.location).toBe('/simple/tiny-b/')
    const first = await send(node.url, { path: '/simple/tiny-b/', headers: { accept: JSON_ACCEPT } })
    expect(first.status).toBe(200)
    const again = await send(node.url, { path: '/simple/tiny-b/', headers: { accept: JSON_ACCEPT, 'if-none-match': String(first.headers.etag) } })
    expect(again.status).toBe(304)
    const other = await send(node.url, { path: '/simple/tiny-b/', headers: { accept: 'text/html', 'if-none-match': String(first.headers.etag) } })
    expect(other.status).toBe(200)
  })

  it('replays pages and real 404s stale while upstream fails, never invents a 404', async () => {
    const fresh0 = await startTestNode({
      content_rewrite: { targets: [pypi.filesUrl] },
      rules: [{ name: 'pypi-simple', path_prefix: '/simple/', upstream: pypi.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: 0 }]
    })
    try {
      expect((await send(fresh0.url, { path: '/simple/nothere/' })).status).toBe(404)
      const ok = await send(fresh0.url, { path: '/simple/tinya/' })
      const okJson = await send(fresh0.url, { path: '/simple/tinyb/', headers: { accept: JSON_ACCEPT } })
      pypi.settings.status = 503
      // Only the other format cached: served when the client takes it too (pip takes HTML at q=0.01, a
      // bare client no JSON at all).
      const asHtml = await send(fresh0.url, { path: '/simple/tinya/', headers: { accept: JSON_ACCEPT } })
      expect(asHtml.status).toBe(200)
      expect(asHtml.headers['content-type']).toMatch(/html/)
      expect(asHtml.body.equals(ok.body)).toBe(true)
      expect((await send(fresh0.url, { path: '/simple/tinyb/' })).status).toBe(503)
      expect(okJson.headers['content-type']).toMatch(/json/)
      const stale = await send(fresh0.url, { path: '/simple/tinya/' })
      expect(stale.status).toBe(200)
      expect(stale.headers['x-aimirror-stale']).toBe('1')
      expect(stale.headers.warning).toBe('110 - "Response is Stale"')
      expect(stale.body.equals(ok.body)).toBe(true)
      await pypi.close()
      const gone = await send(fresh0.url, { path: '/simple/nothere/' })
      expect(gone.status).toBe(404)
      expect(gone.headers['x-aimirror-stale']).toBe('1')
      const never = await send(fresh0.url, { path: '/simple/never-asked/' })
      expect(never.status).toBe(502)
      expect(json(never).error).toBe('ERR_UPSTREAM_UNREACHABLE')
    } finally {
      await fresh0.stop()
    }
  })
})

describe('PyPI files', () => {
  it('serves wheels and .metadata keyed by the published sha256, in parallel pieces', async () => {
    await send(node.url, { path: '/simple/tiny-b/', headers: { accept: JSON_ACCEPT } })
    const w = pypi.wheels.get('Tiny_B-1.1-py3-none-any.whl')
    expect(w).toBeDefined()
    if (w === undefined) return
    const path = `/packages/${w.sha256.slice(0, 2)}/${w.sha256.slice(2, 4)}/${w.sha256.slice(4, 16)}/${w.filename}`
    const res = await send(node.url, { path })
    expect(res.status).toBe(200)
    expect(res.body.equals(w.data)).toBe(true)
    const ranged = pypi.seen.filter(s => s.listener === 'files' && s.headers.range !== undefined)
    expect(ranged.length).toBeGreaterThanOrEqual(4)
    const meta = await send(node.url, { path: path + '.metadata' })
    expect(meta.body.equals(w.metadata)).toBe(true)
  })

  it('never serves a wheel whose bytes do not match the index', async () => {
    await send(node.url, { path: '/simple/tinya/', headers: { accept: 'text/html' } })
    const w = pypi.wheels.get('tinya-1.0-py3-none-any.whl')
    if (w === undefined) throw new Error('fixture')
    pypi.corrupt(w.filename)
    const path = `/packages/${w.sha256.slice(0, 2)}/${w.sha256.slice(2, 4)}/${w.sha256.slice(4, 16)}/${w.filename}`
    const res = await send(node.url, { path }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(res instanceof Error)) {
      expect(res.status).not.toBe(200)
      expect(res.body.equals(w.data)).toBe(false)
    }
    const again = await send(node.url, { path }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
    if (!(again instanceof Error)) expect(again.status).not.toBe(200)
  })

  it('a file asked for before its index falls back to URL identity', async () => {
    const w = pypi.wheels.get('tinyb-1.0-py3-none-any.whl')
    if (w === undefined) throw new Error('fixture')
    const path = `/packages/${w.sha256.slice(0, 2)}/${w.sha256.slice(2, 4)}/${w.sha256.slice(4, 16)}/${w.filename}`
    const res = await send(node.url, { path })
    expect(res.status).toBe(200)
    expect(res.body.equals(w.data)).toBe(true)
    expect((await send(node.url, { path: '/packages/aa/bb/cc/missing-1.0-py3-none-any.whl' })).status).toBe(404)
  })
})

describe('extra indexes under a prefix', () => {
  it('gives root-relative links the mount prefix and serves their files through it', async () => {
    const wheel = Buffer.from('not really a zip, but bytes with a digest')
    const sha = createHash('sha256').update(wheel).digest('hex')
    const torch = await startUpstream((req, res) => {
      if (req.url === '/whl/cu121/torch/') {
        res.writeHead(200, { 'content-type': 'text/html' })
        res.end(`<a href="/whl/cu121/torch-2.1.0%2Bcu121-cp311-none-any.whl#sha256=${sha}">torch</a>\n`)
      } else if (req.url === '/whl/cu121/torch-2.1.0%2Bcu121-cp311-none-any.whl') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(wheel.length) })
        res.end(wheel)
      } else { res.writeHead(404); res.end() }
    })
    const prefixed = await startTestNode({
      rules: [
        { name: 'pytorch-files', path_prefix: '/pytorch/', pattern: '\\.whl$', strip_prefix: true, upstream: torch.url, handler: 'pypi', strategy: 'parallel' },
        { name: 'pytorch', path_prefix: '/pytorch/', strip_prefix: true, upstream: torch.url, handler: 'pypi', strategy: 'proxy' }
      ]
    })
    try {
      const page = await send(prefixed.url, { path: '/pytorch/whl/cu121/torch/' })
      expect(page.body.toString()).toContain(`href="/pytorch/whl/cu121/torch-2.1.0%2Bcu121-cp311-none-any.whl#sha256=${sha}"`)
      const file = await send(prefixed.url, { path: '/pytorch/whl/cu121/torch-2.1.0%2Bcu121-cp311-none-any.whl' })
      expect(file.status).toBe(200)
      expect(file.body.equals(wheel)).toBe(true)
      expect(file.headers.etag).toBe(`"${sha}"`)
    } finally {
      await prefixed.stop()
      await torch.close()
    }
  })
})

describe('the legacy JSON API', () => {
  it('rewrites file URLs to absolute mirror URLs and learns their digests', async () => {
    const w = pypi.wheels.get('tinyb-1.0-py3-none-any.whl')
    if (w === undefined) throw new Error('fixture')
    const fileUrl = `${pypi.filesUrl}/packages/${w.sha256.slice(0, 2)}/${w.sha256.slice(2, 4)}/${w.sha256.slice(4, 16)}/${w.filename}`
    const api = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ info: { name: 'tinyb', version: '1.0' }, urls: [{ filename: w.filename, url: fileUrl, digests: { sha256: w.sha256 }, size: w.data.length }], releases: {} }))
    })
    const withApi = await startTestNode({
      content_rewrite: { targets: [pypi.filesUrl] },
      rules: [
        { name: 'pypi-files', path_prefix: '/packages/', upstream: pypi.filesUrl, handler: 'pypi', strategy: 'parallel', min_size: 0 },
        { name: 'pypi-json', path_prefix: '/pypi/', upstream: api.url, handler: 'pypi', strategy: 'proxy' }
      ]
    })
    try {
      const doc = json(await send(withApi.url, { path: '/pypi/tinyb/json' })) as { urls: Array<{ url: string }> }
      const url = doc.urls[0]?.url ?? ''
      expect(url).toBe(`${withApi.url}${new URL(fileUrl).pathname}`)
      pypi.corrupt(w.filename)
      const bad = await send(withApi.url, { path: new URL(url).pathname }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))
      if (!(bad instanceof Error)) expect(bad.status).not.toBe(200)
    } finally {
      await withApi.stop()
      await api.close()
    }
  })
})

describe('small wheels from a throttled file host', () => {
  it('come down over several connections at once', async () => {
    const size = 1_000_000
    const sha = generatedSha256(size)
    const files = await startFileServer({ files: { '/packages/ab/big-1.0-py3-none-any.whl': { size } }, perConnectionBps: 1_000_000 })
    const index = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' })
      res.end(JSON.stringify({ meta: { 'api-version': '1.1' }, name: 'big', files: [{ filename: 'big-1.0-py3-none-any.whl', url: `${files.url}/packages/ab/big-1.0-py3-none-any.whl`, hashes: { sha256: sha }, size }] }))
    })
    const mirror = await startTestNode({
      content_rewrite: { targets: [files.url] },
      rules: [
        { name: 'pypi-files', path_prefix: '/packages/', upstream: files.url, handler: 'pypi', strategy: 'parallel', min_size: 0 },
        { name: 'pypi-simple', path_prefix: '/simple/', upstream: index.url, handler: 'pypi', strategy: 'proxy' }
      ]
    })
    try {
      await send(mirror.url, { path: '/simple/big/', headers: { accept: JSON_ACCEPT } })
      const wheel = await send(mirror.url, { path: '/packages/ab/big-1.0-py3-none-any.whl' })
      expect(wheel.status).toBe(200)
      expect(createHash('sha256').update(wheel.body).digest('hex')).toBe(sha)
      expect(files.stats.peakConnections).toBeGreaterThanOrEqual(4)
    } finally {
      await mirror.stop()
      await index.close()
      await files.close()
    }
  })
})
