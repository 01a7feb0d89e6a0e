import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import type { ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import { startUpstream } from '../helpers/upstream.ts'

/**
 * Index documents far bigger than any small-page assumption (npm packuments of packages with tens of
 * thousands of versions, PyPI pages of nightly builds) are rewritten as they stream: the node's memory
 * does not grow with them, and none is too big to be rewritten.
 */

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Live heap plus Buffer memory after a full GC: garbage is not growth, retained bodies are. */
function retained (): number {
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

const SHA1 = 'a'.repeat(40)
const SHA256 = 'c'.repeat(64)

/** A packument of `versions` versions whose tarballs live under `tarballBase`, in pieces. */
function * packument (versions: number, tarballBase: string): Generator<string> {
  yield '{"name":"big","dist-tags":{"latest":"1.0.0"},"versions":{'
  const description = 'x'.repeat(900)
  for (let i = 0; i < versions; i++) {
    const integrity = createHash('sha512').update(String(i)).digest('base64')
    yield `${i > 0 ? ',' : ''}"1.${i}.0":{"name":"big","version":"1.${i}.0","description":"${description}","dist":{"integrity":"sha512-${integrity}","shasum":"${SHA1}","tarball":"${tarballBase}/big/-/big-1.${i}.0.tgz"}}`
  }
  yield '}}'
}

/** A PEP 503 page of `files` wheels whose links start with `hrefBase`. */
function * simplePage (files: number, hrefBase: string): Generator<string> {
  yield '<!DOCTYPE html>\n<html><body>\n'
  for (let i = 0; i < files; i++) {
    yield `<a href="${hrefBase}/packages/${(i % 251).toString(16).padStart(2, '0')}/big-1.${i}-py3-none-any.whl#sha256=${SHA256}" data-requires-python="&gt;=3.9" data-dist-info-metadata="sha256=${SHA256}">big-1.${i}-py3-none-any.whl</a><br/>\n`
  }
  yield '</body></html>\n'
}

/** Joins a generator's pieces into chunks of about 256 KiB. */
function * chunked (pieces: Iterable<string>): Generator<Buffer> {
  let parts: string[] = []
  let size = 0
  for (const piece of pieces) {
    parts.push(piece)
    size += piece.length
    if (size >= 256 * 1024) { yield Buffer.from(parts.join('')); parts = []; size = 0 }
  }
  if (parts.length > 0) yield Buffer.from(parts.join(''))
}

function sizeAndSha256 (pieces: Iterable<string>): { size: number, sha256: string } {
  const hash = createHash('sha256')
  let size = 0
  for (const chunk of chunked(pieces)) { hash.update(chunk); size += chunk.length }
  return { size, sha256: hash.digest('hex') }
}

async function serve (res: ServerResponse, type: string, pieces: Iterable<string>): Promise<void> {
  res.writeHead(200, { 'content-type': type })
  await pipeline(Readable.from(chunked(pieces)), res)
}

/** GETs `path`, hashing the body as it comes, while sampling retained memory every 100 ms. */
async function fetchWatched (base: string, path: string): Promise<{ status: number, size: number, sha256: string, peakGrowth: number }> {
  const url = new URL(base)
  const before = retained()
  let peak = before
  const sampler = setInterval(() => { peak = Math.max(peak, retained()) }, 100)
  try {
    return await new Promise((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path, agent: false }, (res) => {
        const hash = createHash('sha256')
        let size = 0
        res.on('data', (c: Buffer) => { hash.update(c); size += c.length })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, size, sha256: hash.digest('hex'), peakGrowth: Math.max(peak, retained()) - before }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end()
    })
  } finally {
    clearInterval(sampler)
  }
}

describe('large index documents', () => {
  it('rewrites a 70 MB npm packument with flat memory', async () => {
    const VERSIONS = 60_000
    const registry = await startUpstream(async (req, res) => {
      if (req.url === '/big') await serve(res, 'application/json', packument(VERSIONS, registry.url))
      else res.writeHead(404).end()
    })
    const node = await startTestNode({
      rules: [{ name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: registry.url, handler: 'npm', strategy: 'proxy' }]
    })
    try {
      const got = await fetchWatched(node.url, '/npm/big')
      const expected = sizeAndSha256(packument(VERSIONS, `${node.url}/npm`))
      expect(got.status).toBe(200)
      // Bigger than the 64 MiB a whole-body rewrite may hold, and rewritten all the same.
      expect(expected.size).toBeGreaterThan(64 * 1024 * 1024)
      expect(got).toMatchObject(expected)
      // Held whole, the document and its parse would be several times its size.
      expect(got.peakGrowth).toBeLessThan(16 * 1024 * 1024)
    } finally {
      await node.stop()
      await registry.close()
    }
  })

  it('rewrites a 40 MB PyPI page with flat memory', async () => {
    const FILES = 150_000
    const files = await startUpstream((_req, res) => { res.writeHead(404).end() })
    const index = await startUpstream(async (req, res) => {
      if (req.url === '/simple/big/') await serve(res, 'text/html', simplePage(FILES, files.url))
      else res.writeHead(404).end()
    })
    const node = await startTestNode({
      content_rewrite: { targets: [files.url] },
      rules: [
        { name: 'pypi-files', path_prefix: '/packages/', upstream: files.url, handler: 'pypi', strategy: 'parallel', min_size: 0 },
        { name: 'pypi-simple', path_prefix: '/simple/', upstream: index.url, handler: 'pypi', strategy: 'proxy' }
      ]
    })
    try {
      const got = await fetchWatched(node.url, '/simple/big/')
      expect(got.status).toBe(200)
      expect(got).toMatchObject(sizeAndSha256(simplePage(FILES, '')))
      expect(got.peakGrowth).toBeLessThan(16 * 1024 * 1024)
    } finally {
      await node.stop()
      await index.close()
      await files.close()
    }
  })
})
