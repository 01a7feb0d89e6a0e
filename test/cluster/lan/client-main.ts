/**
 * Runs inside a node's namespace for the namespace test. `get <url>`: prints {status, bytes, sha256} of the
 * body (as a registry client, answering the mirror's token challenge); `json <url>`: prints the body.
 */
import { createHash } from 'node:crypto'
import { registryGet } from './registry.ts'

const [mode, url] = process.argv.slice(2)
const res = mode === 'json' ? await fetch(url as string, { signal: AbortSignal.timeout(30_000) }) : await registryGet(url as string)
if (mode === 'json') {
  process.stdout.write(await res.text())
} else {
  const h = createHash('sha256')
  let bytes = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) { h.update(chunk); bytes += chunk.length }
  process.stdout.write(JSON.stringify({ status: res.status, bytes, sha256: h.digest('hex') }))
}
