/**
 * The registry upstream of the OCI bench as its own process: the token-auth front of the test fixtures
 * (scoped expiring tokens, blob GETs 307'd to signed URLs on 127.0.0.2 throttled per connection) in
 * front of a real `docker-registry`.
 *   node bench/oci-upstream-main.ts --registry http://127.0.0.1:P --blob-dir DIR --per-conn 4000000
 * Prints one JSON line {"url"} when listening; exits on SIGTERM/SIGINT and when its stdin closes.
 */
import { parseArgs } from 'node:util'
import { startOciRegistry } from '../test/fixtures/upstreams/oci-registry.ts'

const { values } = parseArgs({
  options: {
    registry: { type: 'string' },
    'blob-dir': { type: 'string' },
    'per-conn': { type: 'string', default: '0' },
    'token-ttl': { type: 'string', default: '300' }
  }
})
if (values.registry === undefined || values['blob-dir'] === undefined) throw new Error('--registry and --blob-dir are required')

const front = await startOciRegistry({
  backend: { url: values.registry, blobDir: values['blob-dir'] },
  auth: { tokenTtlS: Number(values['token-ttl']) },
  cdn: { perConnectionBps: Number(values['per-conn']) }
})

let closing = false
const shutdown = (): void => {
  if (closing) return
  closing = true
  void front.close().finally(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
process.stdin.on('close', shutdown)
process.stdin.resume()

process.stdout.write(`${JSON.stringify({ url: front.url })}\n`)
