/** Shared setup of the registry integration tests: a mirror node in front of the fake registry, and a tiny pull client. */
import { request } from 'undici'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { MEDIA } from '../fixtures/upstreams/oci-image.ts'

export const ALL_TYPES = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest]

export interface Answer {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** A mirror whose default upstream and whose docker.io, ghcr.io and quay.io all lead to `upstream`. */
export async function startMirror (upstream: string, extra: { oci?: Record<string, unknown>, blobRule?: Record<string, unknown>, ttlS?: number } = {}): Promise<TestNode> {
  return await startTestNode({
    rules: [
      { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', chunk_size: 65536, concurrency: 4, min_size: 0, ...extra.blobRule },
      { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy', metadata_ttl_s: extra.ttlS ?? 60 }
    ],
    oci: { registries: { 'docker.io': upstream, 'ghcr.io': upstream, 'quay.io': upstream }, ...extra.oci }
  })
}

function flat (headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v
  return out
}

export async function fetchRaw (url: string, init: { method?: 'GET' | 'HEAD' | 'POST', headers?: string[], body?: string } = {}): Promise<Answer> {
  const res = await request(url, { method: init.method ?? 'GET', headers: init.headers ?? [], body: init.body })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: flat(res.headers), body }
}

/** Parses `Bearer k="v",...` into its parameters. */
export function bearerParams (header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of (header ?? '').matchAll(/(\w+)="([^"]*)"/g)) out[m[1] as string] = m[2] as string
  return out
}

/**
 * A pull client that does what docker does: on a 401 it reads the challenge, gets a token from the
 * realm (with Basic credentials when it has them) and repeats the request; tokens are cached per scope.
 */
export class PullClient {
  readonly base: string
  readonly credentials: string | null
  readonly tokens = new Map<string, string>()
  tokenRequests = 0

  constructor (base: string, credentials?: { user: string, password: string }) {
    this.base = base
    this.credentials = credentials === undefined ? null : 'Basic ' + Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')
  }

  async get (path: string, init: { method?: 'GET' | 'HEAD', accept?: string[], range?: string } = {}): Promise<Answer> {
    const headers: string[] = []
    for (const a of init.accept ?? ALL_TYPES) headers.push('accept', a)
    if (init.range !== undefined) headers.push('range', init.range)
    const scopeKey = path.split('/').slice(0, -2).join('/')
    for (let attempt = 0; attempt < 2; attempt++) {
      const token = this.tokens.get(scopeKey)
      const res = await fetchRaw(this.base + path, { method: init.method, headers: token === undefined ? headers : [...headers, 'authorization', `Bearer ${token}`] })
      if (res.status !== 401 || attempt === 1) return res
      const c = bearerParams(res.headers['www-authenticate'])
      const url = new URL(c.realm ?? '')
      if (c.service !== undefined) url.searchParams.set('service', c.service)
      if (c.scope !== undefined) url.searchParams.set('scope', c.scope)
      this.tokenRequests++
      const t = await fetchRaw(url.href, { headers: this.credentials === null ? [] : ['authorization', this.credentials] })
      if (t.status !== 200) return t
      this.tokens.set(scopeKey, (JSON.parse(t.body.toString()) as { token: string }).token)
    }
    throw new Error('unreachable')
  }
}
