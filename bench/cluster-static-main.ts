/**
 * A plain Node static file server, the second plain-HTTP reference of the cluster bench's peer row
 * (Node's own HTTP stack, no hashing, no sendfile).
 *   node bench/cluster-static-main.ts --host 10.213.9.2 --port 8089 --root DIR
 * Prints "listening" when ready; exits on SIGTERM/SIGINT.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join, normalize } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    root: { type: 'string' }
  }
})
const root = values.root
if (root === undefined) throw new Error('--root is required')

const server = createServer((req, res) => {
  const rel = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] as string))
  if (rel.includes('..')) { res.writeHead(400).end(); return }
  const file = join(root, rel)
  stat(file).then(async (st) => {
    if (!st.isFile()) { res.writeHead(404).end(); return }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size })
    if (req.method === 'HEAD') { res.end(); return }
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), res)
  }).catch(() => {
    if (!res.headersSent) res.writeHead(404).end()
    else res.destroy()
  })
})
server.listen(Number(values.port), values.host, () => { process.stdout.write('listening\n') })
const shutdown = (): void => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
