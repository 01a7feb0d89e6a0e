/** The namespace test's registry process. Usage: registry-main.ts <host> <port> <size> <seed> */
import { createServer } from 'node:http'
import { blobData } from './blob-data.ts'
import { blobRegistry } from './registry.ts'

const [host = '127.0.0.1', port = '9000', size = '1000', seed = '1'] = process.argv.slice(2)
const registry = blobRegistry(blobData(Number(size), Number(seed)))
const server = createServer((req, res) => registry.handle(req, res))
server.listen(Number(port), host, () => { process.stdout.write('registry ready\n') })
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
