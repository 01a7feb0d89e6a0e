/**
 * A registry for the namespace test: HEAD/GET /v2/library/demo/blobs/sha256:<hex> of one blob, with Range,
 * and GET /_stats with the body bytes it sent. Usage: registry-main.ts <host> <port> <size> <seed>
 */
import { createServer } from 'node:http'
import { blobData, sha256Hex } from './blob-data.ts'

const [host = '127.0.0.1', port = '9000', size = '1000', seed = '1'] = process.argv.slice(2)
const data = blobData(Number(size), Number(seed))
const path = `/v2/library/demo/blobs/sha256:${sha256Hex(data)}`
let sent = 0

const server = createServer((req, res) => {
  if (req.url === '/_stats') { res.end(JSON.stringify({ sent })); return }
  if (req.url === '/v2/') { res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }); res.end('{}'); return }
  if (req.url !== path) { res.writeHead(404); res.end(); return }
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
  const start = m === null ? 0 : Number(m[1])
  const end = m === null || m[2] === '' ? data.length : Math.min(data.length, Number(m[2]) + 1)
  if (start >= data.length) { res.writeHead(416, { 'content-range': `bytes */${data.length}` }); res.end(); return }
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'content-length': end - start, 'docker-content-digest': `sha256:${sha256Hex(data)}` }
  if (m !== null) headers['content-range'] = `bytes ${start}-${end - 1}/${data.length}`
  res.writeHead(m === null ? 200 : 206, headers)
  if (req.method === 'HEAD') { res.end(); return }
  sent += end - start
  res.end(data.subarray(start, end))
})
server.listen(Number(port), host, () => { process.stdout.write('registry ready\n') })
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
