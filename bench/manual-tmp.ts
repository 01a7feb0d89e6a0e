import { parseConfig } from '../config/load.ts'
import { createNode } from '../node/index.ts'
import { startFileServer } from '../test/fixtures/upstreams/file-server.ts'
const size = Number(process.argv[2] ?? 1024 ** 3)
const files = await startFileServer({ files: { '/files/big.bin': { size, seed: 1 }, '/files/big2.bin': { size, seed: 2 } }, perConnectionBps: 4_000_000, aggregateBps: 200_000_000, latencyMs: 20 })
const config = parseConfig({
  server: { host: '127.0.0.1', port: 18081 },
  cache: { dir: '/tmp/man/cache', max_size_gb: 100, min_free_gb: 0 },
  logging: { level: 'warn' },
  rules: [{ name: 'bench', path_prefix: '/files/', upstream: files.url, strategy: 'parallel', min_size: 1, concurrency: 64, chunk_size: 0 }]
}, { env: {} })
const node = createNode(config)
await node.start()
console.log('ready', files.url)
setInterval(() => { console.log('upstream bytes', files.stats.bytesSent, 'rss', Math.round(process.memoryUsage().rss / 1048576)) }, 5000).unref()
