/**
 * A PyPI for the pip bench as its own process: the simple API (PEP 503 HTML with `#sha256=` fragments,
 * `data-requires-python` and PEP 658/714 metadata attributes; PEP 691 JSON with PEP 700 sizes, chosen by
 * Accept; ETags, 304s, 301 to the normal form) over real wheels from disk, and the wheels and their
 * `.metadata` files, throttled per connection by the bench file server.
 *   node bench/pip-upstream-main.ts --manifest wheels.json --per-conn 1000000 --aggregate 200000000 --latency-ms 20
 * The manifest is what bench/pip-wheels.ts writes. Prints one JSON line {"url"} when listening;
 * `GET /__stats`, `POST /__reset` as bench/upstream-main.ts. Exits on SIGTERM/SIGINT and when stdin closes.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { startFileServer } from '../test/fixtures/upstreams/file-server.ts'
import type { FileSpec } from '../test/fixtures/upstreams/file-server.ts'
import type { BenchWheel } from './pip-wheels.ts'

const { values } = parseArgs({
  options: {
    manifest: { type: 'string' },
    'per-conn': { type: 'string', default: '0' },
    aggregate: { type: 'string', default: '0' },
    'latency-ms': { type: 'string', default: '0' }
  }
})
if (values.manifest === undefined) throw new Error('--manifest is required')
const wheels = JSON.parse(await readFile(values.manifest, 'utf8')) as BenchWheel[]
const latencyMs = Number(values['latency-ms'])

const normalize = (n: string): string => n.replace(/[-_.]+/g, '-').toLowerCase()
const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
/** Files live under a content-derived directory, as on files.pythonhosted.org. */
const fileDir = (w: BenchWheel): string => `/packages/${w.sha256.slice(0, 2)}/${w.sha256.slice(2, 4)}/${w.sha256.slice(4)}`
const fileUrlPath = (w: BenchWheel): string => `${fileDir(w)}/${encodeURIComponent(w.filename)}`

const files: Record<string, FileSpec> = {}
const projects = new Map<string, BenchWheel[]>()
for (const w of wheels) {
  const wheel: FileSpec = { file: w.path, contentType: 'application/octet-stream' }
  const meta: FileSpec = { file: w.metadataPath, contentType: 'application/octet-stream' }
  // Clients send the path as the page wrote it (%2B for "+") or decoded; both name the file.
  for (const p of new Set([fileUrlPath(w), `${fileDir(w)}/${w.filename}`])) {
    files[p] = wheel
    files[`${p}.metadata`] = meta
  }
  projects.set(w.project, [...(projects.get(w.project) ?? []), w])
}

function htmlPage (origin: string, project: string, list: BenchWheel[]): string {
  const links = list.map((w) => {
    const py = w.requiresPython === null ? '' : ` data-requires-python="${escapeHtml(w.requiresPython)}"`
    const meta = `sha256=${w.metadataSha256}`
    return `    <a href="${origin}${fileUrlPath(w)}#sha256=${w.sha256}"${py} data-dist-info-metadata="${meta}" data-core-metadata="${meta}">${escapeHtml(w.filename)}</a><br />\n`
  })
  return `<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.1">\n    <title>Links for ${project}</title>\n  </head>\n` +
    `  <body>\n    <h1>Links for ${project}</h1>\n${links.join('')}  </body>\n</html>\n`
}

function jsonPage (origin: string, project: string, list: BenchWheel[]): string {
  return JSON.stringify({
    meta: { 'api-version': '1.1', _last_serial: 1 },
    name: project,
    versions: [...new Set(list.map((w) => w.version))],
    files: list.map((w) => ({
      filename: w.filename,
      url: `${origin}${fileUrlPath(w)}`,
      hashes: { sha256: w.sha256 },
      'requires-python': w.requiresPython,
      'core-metadata': { sha256: w.metadataSha256 },
      'dist-info-metadata': { sha256: w.metadataSha256 },
      size: w.size,
      'upload-time': '2026-01-01T00:00:00.000000Z',
      yanked: false
    }))
  })
}

function send (req: IncomingMessage, res: ServerResponse, status: number, body: string, type: string, extra: Record<string, string> = {}): void {
  const bytes = Buffer.from(body)
  const etag = `"${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}"`
  const headers = { 'Content-Type': type, ETag: etag, 'Cache-Control': 'max-age=600, public', Vary: 'Accept, Accept-Encoding', ...extra }
  if (status === 200 && req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers).end()
    return
  }
  res.writeHead(status, { ...headers, 'Content-Length': String(bytes.length) }).end(req.method === 'HEAD' ? undefined : bytes)
}

async function simple (req: IncomingMessage, res: ServerResponse, path: string, origin: string): Promise<void> {
  if (latencyMs > 0) await sleep(latencyMs)
  const json = /application\/vnd\.pypi\.simple\.v1\+json/.test(req.headers.accept ?? '')
  const type = json ? 'application/vnd.pypi.simple.v1+json' : 'text/html; charset=utf-8'
  if (path === '/simple/') {
    const names = [...projects.keys()].sort()
    send(req, res, 200, json
      ? JSON.stringify({ meta: { 'api-version': '1.1' }, projects: names.map((name) => ({ name })) })
      : `<!DOCTYPE html>\n<html><body>\n${names.map((n) => `<a href="/simple/${n}/">${n}</a>`).join('\n')}\n</body></html>\n`, type)
    return
  }
  const m = /^\/simple\/([^/]+)(\/?)$/.exec(path)
  if (m === null) return send(req, res, 404, 'Not Found\n', 'text/plain')
  const name = decodeURIComponent(m[1] as string)
  if (normalize(name) !== name || m[2] !== '/') {
    res.writeHead(301, { Location: `/simple/${normalize(name)}/`, 'Content-Length': '0' }).end()
    return
  }
  const list = projects.get(name)
  if (list === undefined) return send(req, res, 404, 'Not Found\n', 'text/plain')
  send(req, res, 200, json ? jsonPage(origin, name, list) : htmlPage(origin, name, list), type)
}

let origin = ''
const up = await startFileServer({
  files,
  perConnectionBps: Number(values['per-conn']),
  aggregateBps: Number(values.aggregate),
  latencyMs,
  onRequest: async (req, res, info) => {
    if (info.path === '/__stats' && req.method === 'GET') {
      const body = JSON.stringify(info.stats)
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body)
      return true
    }
    if (info.path === '/__reset' && req.method === 'POST') {
      info.stats.reset()
      res.writeHead(204).end()
      return true
    }
    if (info.path.startsWith('/simple/') && (req.method === 'GET' || req.method === 'HEAD')) {
      await simple(req, res, info.path, origin)
      return true
    }
    return false
  }
})
origin = up.url

let closing = false
const shutdown = (): void => {
  if (closing) return
  closing = true
  void up.close().finally(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
process.stdin.on('close', shutdown)
process.stdin.resume()

process.stdout.write(`${JSON.stringify({ url: up.url })}\n`)
