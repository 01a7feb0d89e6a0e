/** The namespace test's registry process. Usage: registry-main.ts <host> <port> <size>:<seed>... */
import { createServer } from 'node:http'
import { blobData } from './blob-data.ts'
import { blobRegistry } from './registry.ts'

const [host = '127.0.0.1', port = '9000', ...specs] = process.argv.slice(2)
const blobs = specs.map(s => {
  const [size, seed] = s.split(':').map(Number)
  return blobData(size ?? 1000, seed ?? 1)
})
const registry = blobRegistry(...blobs)
// GET /_refuse?path=<blob path>&on=1|0: GETs of that blob answer 503 (its bytes unavailable upstream) or not;
// HEAD still answers (the node checks a client's access to a layer with it).
const refused = new Set<string>()
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://registry')
  if (url.pathname === '/_refuse') {
    const path = url.searchParams.get('path') ?? ''
    if (url.searchParams.get('on') === '1') refused.add(path)
    else refused.delete(path)
    res.end('{}')
    return
  }
  if (req.method === 'GET' && refused.has(url.pathname)) { res.writeHead(503); res.end(); return }
  registry.handle(req, res)
})
server.listen(Number(port), host, () => { process.stdout.write('registry ready\n') })
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
