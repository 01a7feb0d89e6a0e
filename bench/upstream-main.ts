/**
 * The throttled upstream as its own process, so the node under test is measured alone.
 *   node bench/upstream-main.ts --per-conn 4000000 --aggregate 200000000 --latency-ms 20 \
 *     --file /files/a.bin=1073741824:1 [--file ...]
 * Prints one JSON line {"url","cdnUrl"} when listening. `GET /__stats` answers the counters as JSON,
 * `POST /__reset` zeroes them. Exits on SIGTERM/SIGINT, and when its stdin closes (the bench died).
 */
import { parseArgs } from 'node:util'
import { startFileServer } from '../test/fixtures/upstreams/file-server.ts'
import type { FileSpec } from '../test/fixtures/upstreams/file-server.ts'

const { values } = parseArgs({
  options: {
    'per-conn': { type: 'string', default: '0' },
    aggregate: { type: 'string', default: '0' },
    'latency-ms': { type: 'string', default: '0' },
    file: { type: 'string', multiple: true, default: [] }
  }
})

const files: Record<string, FileSpec> = {}
for (const f of values.file) {
  const m = /^(\/[^=]+)=(\d+):(\d+)$/.exec(f)
  if (m === null) throw new Error(`--file: expected /path=size:seed, got "${f}"`)
  files[m[1] as string] = { size: Number(m[2]), seed: Number(m[3]) }
}

const up = await startFileServer({
  files,
  perConnectionBps: Number(values['per-conn']),
  aggregateBps: Number(values.aggregate),
  latencyMs: Number(values['latency-ms']),
  onRequest: (req, res, info) => {
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
    return false
  }
})

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

process.stdout.write(`${JSON.stringify({ url: up.url, cdnUrl: up.cdnUrl })}\n`)
