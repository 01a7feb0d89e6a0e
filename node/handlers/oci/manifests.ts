import type { Fetcher } from '../../fetch/fetcher.ts'
import { digestIdentity } from '../../fetch/identity.ts'
import type { BlobIdentity } from '../../fetch/identity.ts'
import { STALE_HEADERS } from '../../metadata/cache.ts'
import type { AccessControl } from './access.ts'
import { joinedAccept, manifestMediaType } from './accept.ts'
import type { Digest, Reference } from './api-path.ts'
import { parseDigest } from './api-path.ts'
import { authMarker, AUTH_MARKER } from './auth-interceptor.ts'
import { readSmall } from './io.ts'
import { API_VERSION_HEADER } from './replies.ts'
import type { Refusal } from './replies.ts'
import { MANIFEST_LIMIT } from './tags.ts'
import type { TagResolver } from './tags.ts'
import type { OciRequest, Served } from './types.ts'

export interface ManifestServerComponents {
  fetcher: Fetcher
  access: AccessControl
  tags: TagResolver
}

/** Manifests by digest are kept under their own key, which also keeps the exact upstream Content-Type. */
export function manifestIdentity (digest: Digest): BlobIdentity {
  return { ...digestIdentity({ algorithm: digest.algorithm, hex: digest.hex }), key: `oci-manifest:${digest.value}` }
}

const GENERIC_TYPES = new Set(['', 'application/octet-stream', 'text/plain', 'binary/octet-stream'])

/**
 * Manifests, byte-exact. By digest: immutable, fetched once through the fetch engine (verified against
 * the digest) and served from the blob store after. By tag: the tag resolver names the digest (HEAD
 * upstream, short TTL, per Accept variant, stale when upstream is down) and the body comes by digest,
 * so a cold `HEAD tag` + `GET digest` costs one upstream pull.
 */
export class ManifestServer {
  private readonly fetcher: Fetcher
  private readonly access: AccessControl
  private readonly tags: TagResolver

  constructor (components: ManifestServerComponents) {
    this.fetcher = components.fetcher
    this.access = components.access
    this.tags = components.tags
  }

  async serve (req: OciRequest, reference: Reference, ttlMs: number): Promise<Served> {
    const { ctx, scope, who } = req
    if (reference.kind === 'digest') {
      // Fetched beside the access check (one upstream round trip less when cold), sent after its yes.
      const [verdict, body] = await Promise.allSettled([
        this.access.check(scope, who, 'manifests', reference.digest.value, { accept: req.accept, signal: ctx.signal }),
        this.body(req, reference.digest)
      ])
      if (verdict.status === 'rejected') throw verdict.reason
      if (!verdict.value.ok) return { status: verdict.value.status, headers: verdict.value.headers, what: 'manifest' }
      if (body.status === 'rejected') throw body.reason
      const got = body.value
      if ('status' in got) return got
      await this.send(req, reference.digest.value, got.contentType, got.bytes, false)
      return null
    }
    const outcome = await this.tags.resolve(scope, who, reference.tag, req.accept, ttlMs, { signal: ctx.signal })
    if (outcome.kind === 'refused') return { status: outcome.status, headers: outcome.headers, what: 'manifest' }
    const { record, stale } = outcome
    const digest = parseDigest(record.digest)
    if (digest === null) return { status: 502, headers: {}, what: 'manifest' }
    if (req.head && record.size >= 0 && !GENERIC_TYPES.has(record.contentType)) {
      await this.send(req, record.digest, record.contentType, null, stale, record.size)
      return null
    }
    let bytes = outcome.bytes
    let contentType = record.contentType
    if (bytes === undefined) {
      const got = await this.body(req, digest)
      if ('status' in got) return got
      bytes = got.bytes
      if (GENERIC_TYPES.has(contentType)) contentType = got.contentType
    }
    if (GENERIC_TYPES.has(contentType)) contentType = manifestMediaType(bytes)
    await this.send(req, record.digest, contentType, bytes, stale)
    return null
  }

  /** The manifest bytes by digest, from the blob store or fetched (and verified) into it. */
  private async body (req: OciRequest, digest: Digest): Promise<{ bytes: Buffer, contentType: string } | Refusal> {
    const { scope, who } = req
    const headers: Record<string, string> = { [AUTH_MARKER]: authMarker(scope, who.cred) }
    const accept = joinedAccept(req.accept)
    if (accept !== undefined) headers.accept = accept
    const url = new URL(`${scope.upstream}/v2/${scope.repo}/manifests/${digest.value}`)
    // Not known public: that client's, kept from members (see UpstreamRequest.credential).
    const credential = who.cred !== null && !(await this.access.knownPublic(digest.value)) ? { credential: who.cred.key } : {}
    const got = await this.fetcher.acquire(manifestIdentity(digest), { url, headers, ...credential }, {
      signal: req.ctx.signal, minSize: 0, maxSize: MANIFEST_LIMIT, concurrency: 1, chunkSize: 0
    })
    if (got.kind === 'upstream-response') {
      return { status: got.status, headers: got.headers, body: got.body, contentType: got.headers['content-type'], what: 'manifest' }
    }
    try {
      const bytes = await readSmall(got.open(0, got.meta.size ?? MANIFEST_LIMIT + 1), MANIFEST_LIMIT)
      const type = got.meta.contentType ?? ''
      return { bytes, contentType: GENERIC_TYPES.has(type) ? manifestMediaType(bytes) : type }
    } finally {
      got.release()
    }
  }

  private async send (req: OciRequest, digest: string, contentType: string, bytes: Buffer | null, stale: boolean, size?: number): Promise<void> {
    const reply = req.ctx.reply
    reply.code(200).headers({
      ...API_VERSION_HEADER,
      ...(stale ? STALE_HEADERS : {}),
      'content-type': contentType,
      'content-length': String(bytes?.length ?? size ?? 0),
      'docker-content-digest': digest,
      etag: `"${digest}"`
    })
    await reply.send(req.head ? undefined : bytes ?? undefined)
  }
}
