/**
 * The cluster bench's upstream: a registry-like blob server (its own process, in its own namespace).
 *   node bench/cluster-upstream-main.ts --host 10.213.9.1 --port 9000 --per-conn 4000000 \
 *     --aggregate 200000000 --latency-ms 20 --blob peer=1073741824:1 [--blob ...]
 * Each blob is served at /v2/bench/<name>/blobs/sha256:<hex> (GET, HEAD, Range), so the node's OCI
 * handler keys it by digest and the cluster may share it. Prints one JSON line
 * {"url","blobs":{name:{path,digest,size}}} when listening. `GET /_stats` answers the body bytes sent
 * (total and per blob), `POST /_reset` zeroes them. Exits on SIGTERM/SIGINT and when stdin closes.
 */
import { createWriteStream } from 'node:fs'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { BlobContent, RateLimit, pace } from './cluster-content.ts'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'per-conn': { type: 'string', default: '0' },
    aggregate: { type: 'string', default: '0' },
    'latency-ms': { type: 'string', default: '0' },
    blob: { type: 'string', multiple: true, default: [] }
  }
})

interface Blob { name: string; path: string; digest: string; content: BlobContent }
const blobs = new Map<string, Blob>()
for (const spec of values.blob) {
  const m = /^([a-z0-9-]+)=(\d+):(\d+)$/.exec(spec)
  if (m === null) throw new Error(`--blob: expected name=size:seed, got "${spec}"`)
  const content = new BlobContent(Number(m[2]), Number(m[3]))
  const digest = content.sha256()
  const path = `/v2/bench/${m[1] as string}/blobs/sha256:${digest}`
  blobs.set(path, { name: m[1] as string, path, digest, content })
}

const perConn = Number(values['per-conn'])
const latencyMs = Number(values['latency-ms'])
const aggregate = new RateLimit(Number(values.aggregate))
const connLimits = new WeakMap<Socket, RateLimit>()
/** BENCH_UPSTREAM_LOG=<file>: one line per blob request, "<ms> <client ip> <blob> <start> <end sent>". */
const requestLog = process.env.BENCH_UPSTREAM_LOG === undefined ? null : createWriteStream(process.env.BENCH_UPSTREAM_LOG, { flags: 'a' })
const stats = { requests: 0, bytesSent: 0, byBlob: {} as Record<string, number> }
const reset = (): void => {
  stats.requests = 0
  stats.bytesSent = 0
  for (const b of blobs.values()) stats.byBlob[b.name] = 0
}
reset()

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
}

async function serveBlob (req: IncomingMessage, res: ServerResponse, blob: Blob, signal: AbortSignal): Promise<void> {
  const size = blob.content.size
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
  const start = m === null ? 0 : Number(m[1])
  const end = m === null || m[2] === '' ? size - 1 : Math.min(size - 1, Number(m[2]))
  if (m !== null && (start >= size || start > end)) {
    res.writeHead(416, { 'content-range': `bytes */${size}` }).end()
    return
  }
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'content-length': end - start + 1,
    'accept-ranges': 'bytes',
    etag: `"sha256:${blob.digest}"`,
    'docker-content-digest': `sha256:${blob.digest}`
  }
  if (m !== null) headers['content-range'] = `bytes ${start}-${end}/${size}`
  if (latencyMs > 0) await sleep(latencyMs, undefined, { signal })
  res.writeHead(m === null ? 200 : 206, headers)
  if (req.method === 'HEAD' || size === 0) { res.end(); return }
  let sent = 0
  if (requestLog !== null) {
    const at = Date.now()
    res.once('close', () => { requestLog?.write(`${at} ${req.socket.remoteAddress ?? '?'} ${blob.name} ${start} ${start + sent}\n`) })
  }
  let limit = connLimits.get(req.socket)
  if (limit === undefined) {
    limit = new RateLimit(perConn)
    connLimits.set(req.socket, limit)
  }
  for (const parts of blob.content.units(start, end)) {
    const n = parts.reduce((sum, p) => sum + p.length, 0)
    await pace([limit, aggregate], n, signal)
    stats.bytesSent += n
    sent += n
    stats.byBlob[blob.name] = (stats.byBlob[blob.name] ?? 0) + n
    // One writev for the stamp and the slice of the base.
    res.cork()
    let ok = true
    for (const p of parts) ok = res.write(p)
    res.uncork()
    if (!ok) await once(res, 'drain', { signal })
  }
  res.end()
}

const server = createServer((req, res) => {
  stats.requests++
  const path = (req.url ?? '/').split('?')[0] as string
  if (path === '/_stats' && req.method === 'GET') { json(res, 200, stats); return }
  if (path === '/_reset' && req.method === 'POST') { reset(); res.writeHead(204).end(); return }
  if (path === '/v2/' || path === '/v2') { json(res, 200, {}); return }
  const blob = blobs.get(path)
  if (blob === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) { json(res, 404, { errors: [{ code: 'BLOB_UNKNOWN' }] }); return }
  const ac = new AbortController()
  res.once('close', () => { ac.abort() })
  serveBlob(req, res, blob, ac.signal).catch(() => { res.destroy() })
})
server.keepAliveTimeout = 30_000
server.listen(Number(values.port), values.host)
await once(server, 'listening')

let closing = false
const shutdown = (): void => {
  if (closing) return
  closing = true
  server.closeAllConnections()
  server.close(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
process.stdin.on('close', shutdown)
process.stdin.resume()

const addr = server.address()
const port = typeof addr === 'object' && addr !== null ? addr.port : 0
const out = Object.fromEntries([...blobs.values()].map(b => [b.name, { path: b.path, digest: b.digest, size: b.content.size }]))
process.stdout.write(`${JSON.stringify({ url: `http://${values.host}:${port}`, blobs: out })}\n`)
