import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { sha256Hex } from './blob-data.ts'

export interface BlobRegistry {
  /** The first blob's digest and path. */
  readonly digest: string
  readonly path: string
  /** Every blob's path, in the order given. */
  readonly paths: readonly string[]
  /** Body bytes sent so far (all blobs). */
  readonly sent: () => number
  handle: (req: IncomingMessage, res: ServerResponse) => void
}

/** Where a blob lives in the registry. */
export function blobPathOf (digest: string): string {
  return `/v2/library/demo/blobs/sha256:${digest}`
}

/**
 * A registry holding public blobs at /v2/library/demo/blobs/sha256:<hex>, with HEAD and Range, and
 * GET /_stats with the body bytes it sent.
 */
export function blobRegistry (...blobs: Buffer[]): BlobRegistry {
  const byPath = new Map(blobs.map(data => [blobPathOf(sha256Hex(data)), data]))
  const paths = [...byPath.keys()]
  let sent = 0
  return {
    digest: (paths[0] ?? '').slice(-64),
    path: paths[0] ?? '',
    paths,
    sent: () => sent,
    handle (req, res) {
      if (req.url === '/_stats') { res.end(JSON.stringify({ sent })); return }
      if (req.url === '/v2/') { res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }); res.end('{}'); return }
      const data = byPath.get(req.url ?? '')
      if (data === undefined) { res.writeHead(404); res.end(); return }
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
      const start = m === null ? 0 : Number(m[1])
      const end = m === null || m[2] === '' ? data.length : Math.min(data.length, Number(m[2]) + 1)
      if (start >= data.length) { res.writeHead(416, { 'content-range': `bytes */${data.length}` }); res.end(); return }
      const digest = sha256Hex(data)
      // As distribution answers a blob: its digest as the ETag too.
      const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'content-length': end - start, 'docker-content-digest': `sha256:${digest}`, etag: `"sha256:${digest}"` }
      if (m !== null) headers['content-range'] = `bytes ${start}-${end - 1}/${data.length}`
      res.writeHead(m === null ? 200 : 206, headers)
      if (req.method === 'HEAD') { res.end(); return }
      sent += end - start
      res.end(data.subarray(start, end))
    }
  }
}

/** GET as a registry client would: on a Bearer challenge, fetch an anonymous token and ask again. */
export async function registryGet (target: string): Promise<Response> {
  const first = await fetch(target, { signal: AbortSignal.timeout(30_000) })
  const challenge = first.headers.get('www-authenticate') ?? ''
  if (first.status !== 401 || !challenge.startsWith('Bearer ')) return first
  await first.body?.cancel()
  const params = Object.fromEntries([...challenge.slice(7).matchAll(/(\w+)="([^"]*)"/g)].map(m => [m[1], m[2]]))
  const tokenUrl = new URL(params.realm as string)
  for (const k of ['service', 'scope']) if (params[k] !== undefined) tokenUrl.searchParams.set(k, params[k] as string)
  const { token } = await (await fetch(tokenUrl)).json() as { token: string }
  return await fetch(target, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) })
}

/** Sends a response in 64 KiB slices at `bytesPerSec` per connection, like a throttling proxy. */
export function throttled (registry: BlobRegistry, bytesPerSec: number): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const write = res.write.bind(res)
    const end = res.end.bind(res)
    const slices: Buffer[] = []
    // Let the registry build the response, then pace its body.
    res.end = ((chunk?: unknown) => {
      if (Buffer.isBuffer(chunk)) for (let i = 0; i < chunk.length; i += 64 << 10) slices.push(chunk.subarray(i, i + (64 << 10)))
      const pump = async (): Promise<void> => {
        for (const s of slices) {
          if (res.destroyed) return
          write(s)
          await sleep(Math.ceil(s.length / bytesPerSec * 1000))
        }
        end()
      }
      pump().catch(() => res.destroy())
      return res
    }) as typeof res.end
    registry.handle(req, res)
  }
}

/** `registry` served on 127.0.0.1, and the node rules that mirror it (`blobs`: more of the blob rule's settings). */
export async function serveRegistry (registry: BlobRegistry, blobs: Record<string, unknown> = {}): Promise<{ server: Server, rules: Array<Record<string, unknown>> }> {
  const server = createServer((req, res) => registry.handle(req, res))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const rules = [
    { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', min_size: 0, ...blobs },
    { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy' }
  ]
  return { server, rules }
}
