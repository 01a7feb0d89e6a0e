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
const server = createServer((req, res) => registry.handle(req, res))
server.listen(Number(port), host, () => { process.stdout.write('registry ready\n') })
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
