import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import type { ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { startUpstream } from '../helpers/upstream.ts'
import { startCliNode } from './cli-node.ts'
import { freePort } from '../fixtures/upstreams/oci-distribution.ts'

/**
 * Index documents far bigger than any small-page assumption (npm packuments of packages with tens of
 * thousands of versions, PyPI pages of nightly builds) are rewritten as they stream: the node's memory
 * does not grow with them, and none is too big to be rewritten. The node runs as its own process, so
 * its peak resident memory (VmHWM) is its own.
 */

const MiB = 1 << 20

let child: ChildProcess | undefined
let dir = ''
const closers: Array<() => Promise<void>> = []

afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
  child = undefined
  for (const close of closers.splice(0).reverse()) await close()
  if (dir !== '') await rm(dir, { recursive: true, force: true })
  dir = ''
})

/** A node process with these rules; resolves with its URL once /health answers. */
async function startNodeProcess (doc: Record<string, unknown>): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'aimirror-large-meta-'))
  const port = await freePort()
  const config = join(dir, 'config.yaml')
  await writeFile(config, stringify({
    server: { host: '127.0.0.1', port },
    cache: { dir: join(dir, 'cache'), min_free_gb: 0 },
    cluster: { enabled: false, mdns: false },
    logging: { level: 'warn' },
    ...doc
  }))
  const url = `http://127.0.0.1:${port}`
  // With the V8 and malloc settings `aimirror start` gives the node (bin/aimirror.js).
  child = await startCliNode(config, url, ['--expose-gc', '--max-semi-space-size=2', '--heap-growing-percent=40'], { MALLOC_ARENA_MAX: '2' })
  return url
}

/** The node process's peak resident memory so far, in bytes. */
async function peakRss (): Promise<number> {
  const status = await readFile(`/proc/${child?.pid ?? 0}/status`, 'utf8')
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)
  if (kb === null) throw new Error('no VmHWM')
  return Number(kb[1]) * 1024
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

/** GETs `path`, hashing the body as it comes. */
async function fetchHashed (base: string, path: string): Promise<{ status: number, size: number, sha256: string }> {
  const url = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, agent: false }, (res) => {
      const hash = createHash('sha256')
      let size = 0
      res.on('data', (c: Buffer) => { hash.update(c); size += c.length })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, size, sha256: hash.digest('hex') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The node's peak memory growth while `path` is fetched, after a small document warmed it up. */
async function fetchWatched (base: string, path: string, warmPath: string): Promise<{ status: number, size: number, sha256: string, peakGrowth: number }> {
  expect((await fetchHashed(base, warmPath)).status).toBe(200)
  const before = await peakRss()
  const got = await fetchHashed(base, path)
  return { ...got, peakGrowth: await peakRss() - before }
}

/**
 * An upstream serving what `page(entries, its URL)` makes: `big` entries at `paths[0]`, 10 at `paths[1]`;
 * closed after the test.
 */
async function pagesUpstream (type: string, paths: readonly [string, string], big: number, page: (entries: number, self: string) => Iterable<string>): Promise<string> {
  const up = await startUpstream(async (req, res) => {
    if (req.url === paths[0]) await serve(res, type, page(big, up.url))
    else if (req.url === paths[1]) await serve(res, type, page(10, up.url))
    else res.writeHead(404).end()
  })
  closers.push(async () => await up.close())
  return up.url
}

/** A file host the pages link to (it is never asked: only the links are rewritten). */
async function fileHost (): Promise<string> {
  const files = await startUpstream((_req, res) => { res.writeHead(404).end() })
  closers.push(async () => await files.close())
  return files.url
}

describe('large index documents', () => {
  it('rewrites a 70 MB npm packument with flat memory', async () => {
    const VERSIONS = 60_000
    const registry = await pagesUpstream('application/json', ['/big', '/small'], VERSIONS, packument)
    const node = await startNodeProcess({
      rules: [{ name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: registry, handler: 'npm', strategy: 'proxy' }]
    })
    const got = await fetchWatched(node, '/npm/big', '/npm/small')
    const expected = sizeAndSha256(packument(VERSIONS, `${node}/npm`))
    expect(got.status).toBe(200)
    // Bigger than the 64 MiB a whole-body rewrite may hold, and rewritten all the same.
    expect(expected.size).toBeGreaterThan(64 * MiB)
    expect(got).toMatchObject(expected)
    // Storing and serving it unchanged costs about 20 MiB, streamed through the rewrite 35–50 MiB (the
    // same at twice the size); held whole, the document, its text and its parse would be several times it.
    expect(got.peakGrowth).toBeLessThan(96 * MiB)
  })

  it('rewrites a 40 MB PyPI page with flat memory', async () => {
    const FILES = 150_000
    const files = await fileHost()
    const index = await pagesUpstream('text/html', ['/simple/big/', '/simple/small/'], FILES, n => simplePage(n, files))
    const node = await startNodeProcess({
      content_rewrite: { targets: [files] },
      rules: [
        { name: 'pypi-files', path_prefix: '/packages/', upstream: files, handler: 'pypi', strategy: 'parallel', min_size: 0 },
        { name: 'pypi-simple', path_prefix: '/simple/', upstream: index, handler: 'pypi', strategy: 'proxy' }
      ]
    })
    const got = await fetchWatched(node, '/simple/big/', '/simple/small/')
    expect(got.status).toBe(200)
    expect(got).toMatchObject(sizeAndSha256(simplePage(FILES, '')))
    // Rewritten whole, this page took the node 400 MiB more.
    expect(got.peakGrowth).toBeLessThan(96 * MiB)
  })

  it('rewrites a 70 MB page of a generic proxy rule as it streams, with flat memory', async () => {
    const FILES = 260_000
    const files = await fileHost()
    const site = await pagesUpstream('text/html', ['/big', '/small'], FILES, n => simplePage(n, files))
    const node = await startNodeProcess({
      content_rewrite: { targets: [files] },
      rules: [{ name: 'site', pattern: '.*', upstream: site, strategy: 'proxy' }]
    })
    const got = await fetchWatched(node, '/big', '/small')
    const expected = sizeAndSha256(simplePage(FILES, node))
    expect(got.status).toBe(200)
    // Over the old whole-page limit (64 MiB), which passed it through with the upstream's links.
    expect(expected.size).toBeGreaterThan(64 * MiB)
    expect(got).toMatchObject(expected)
    expect(got.peakGrowth).toBeLessThan(96 * MiB)
  })
})
