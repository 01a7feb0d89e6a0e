import type { Dispatcher } from 'undici'
import { isNoAnswer } from '../../errors.ts'
import type { Acquired } from '../../fetch/acquire-types.ts'
import type { Fetcher } from '../../fetch/fetcher.ts'
import { digestIdentity } from '../../fetch/identity.ts'
import type { BlobMeta } from '../../fetch/response-meta.ts'
import { sendBlob } from '../../http/blob-reply.ts'
import { rangeStartHint } from '../../http/blob-response.ts'
import { answerBlobRequest } from '../../http/blob-response.ts'
import type { BlobStore } from '../../store/blob-store.ts'
import { discardBody, requestUpstream } from '../../upstream/request.ts'
import type { AccessControl, Verdict } from './access.ts'
import type { Digest } from './api-path.ts'
import { authMarker, AUTH_MARKER } from './auth-interceptor.ts'
import { deadline, headerMap } from './io.ts'
import type { RegistryClient } from './registry-client.ts'
import { API_VERSION_HEADER } from './replies.ts'
import type { OciRequest, Served } from './types.ts'

export interface BlobServerComponents {
  fetcher: Fetcher
  store: BlobStore
  client: RegistryClient
  access: AccessControl
  dispatcher: Dispatcher
}

export interface BlobFetchOptions {
  chunkSize: number
  concurrency: number
  minSize: number
  maxSize: number | null
}

const PROBE_TIMEOUT_MS = 30_000

/**
 * Blobs, keyed by digest: the same layer from two repositories or two registries is stored once and
 * verified before it is served. GET goes through the fetch engine (parallel Range requests, following
 * the registry's redirect to its CDN and resolving it again when the signed URL expires; the mirror's
 * own tokens, renewed as they expire). HEAD answers from the cache, else from upstream without
 * downloading: the registry's HEAD, or, when it redirects to a signed URL that refuses HEAD, a
 * `Range: bytes=0-0` GET there.
 */
export class BlobServer {
  private readonly c: BlobServerComponents

  constructor (components: BlobServerComponents) {
    this.c = components
  }

  async serve (req: OciRequest, digest: Digest, options: BlobFetchOptions): Promise<Served> {
    const { ctx, scope, who } = req
    const checking = this.c.access.check(scope, who, 'blobs', digest.value, { signal: ctx.signal })
    checking.catch(() => {})
    const extra = { ...API_VERSION_HEADER, 'docker-content-digest': digest.value }
    if (req.head) {
      const verdict = await checking
      if (!verdict.ok) return { status: verdict.status, headers: verdict.headers, what: 'blob' }
      return await this.head(req, digest, extra)
    }
    // A logged-in client's blob that anyone may have is fetched as anyone's (members share it); one that
    // only its credential opens stays that credential's (see UpstreamRequest.credential).
    const open = who.cred === null || await this.c.access.isPublic(scope, 'blobs', digest.value, ctx.signal)
    const allowed: Promise<Verdict> = who.cred !== null && open ? Promise.resolve({ ok: true }) : checking
    // The download starts beside the access check, so a cold blob waits one upstream round trip less;
    // nothing of it reaches the client before the check's yes.
    const [verdict, acquired] = await Promise.allSettled([allowed, this.acquire(req, digest, options, open)])
    // The registry cannot be asked: bytes fetched without credentials (here or by a member, which gives
    // only those) are anyone's, and an anonymous client may have them meanwhile.
    const meanwhile = verdict.status === 'rejected' && who.cred === null && isNoAnswer(verdict.reason) &&
      acquired.status === 'fulfilled' && acquired.value.kind === 'blob' && acquired.value.fetchedFor === undefined
    const refused = !meanwhile && (verdict.status === 'rejected' || !verdict.value.ok)
    if (refused && acquired.status === 'fulfilled' && acquired.value.kind === 'blob') acquired.value.release()
    if (verdict.status === 'rejected' && !meanwhile) throw verdict.reason
    if (verdict.status === 'fulfilled' && !verdict.value.ok) return { status: verdict.value.status, headers: verdict.value.headers, what: 'blob' }
    if (acquired.status === 'rejected') throw acquired.reason
    const got = acquired.value
    if (got.kind === 'upstream-response') {
      return { status: got.status, headers: got.headers, body: got.body, contentType: got.headers['content-type'], what: 'blob' }
    }
    await sendBlob(ctx, got, blobMeta(got.meta, digest, extra))
    return null
  }

  private async acquire (req: OciRequest, digest: Digest, options: BlobFetchOptions, open: boolean): Promise<Acquired> {
    const { ctx, scope, who } = req
    const url = new URL(`${scope.upstream}/v2/${scope.repo}/blobs/${digest.value}`)
    const range = ctx.request.headers.range
    return await this.c.fetcher.acquire(digestIdentity({ algorithm: digest.algorithm, hex: digest.hex }), {
      url, headers: { [AUTH_MARKER]: authMarker(scope, who.cred) }, ...(open || who.cred === null ? {} : { credential: who.cred.key })
    }, {
      signal: ctx.signal,
      hint: rangeStartHint(Array.isArray(range) ? range[0] : range),
      chunkSize: options.chunkSize,
      concurrency: options.concurrency,
      minSize: options.minSize,
      maxSize: options.maxSize
    })
  }

  private async head (req: OciRequest, digest: Digest, extra: Record<string, string>): Promise<Served> {
    const { ctx, scope, who } = req
    let total = await this.knownSize(digest)
    if (total === undefined) {
      const res = await this.c.client.request({ scope, cred: who.cred, method: 'HEAD', path: `/v2/${scope.repo}/blobs/${digest.value}`, signal: ctx.signal })
      discardBody(res.body)
      const location = res.headers.location
      if (res.status >= 300 && res.status < 400 && location !== undefined) {
        total = await this.probe(new URL(location, res.url), ctx.signal)
      } else if (res.status >= 200 && res.status < 300 && /^\d+$/.test(res.headers['content-length'] ?? '')) {
        total = Number(res.headers['content-length'])
      } else {
        return { status: res.status >= 300 && res.status < 400 ? 502 : res.status, headers: {}, what: 'blob' }
      }
      if (total === undefined) return { status: 502, headers: {}, what: 'blob' }
    }
    const meta: BlobMeta = { size: total, etag: `"${digest.value}"`, lastModified: null, contentType: 'application/octet-stream', headers: {}, validator: { etag: null, lastModified: null } }
    const answer = answerBlobRequest(blobMeta(meta, digest, extra), {})
    ctx.reply.code(200).headers(answer.headers)
    await ctx.reply.send()
    return null
  }

  /** The size from the cache, or from a download of it in progress. */
  private async knownSize (digest: Digest): Promise<number | undefined> {
    if (digest.algorithm === 'sha256' && await this.c.store.hasDigest(digest.hex)) return this.c.store.blobSize(digest.hex)
    const key = digestIdentity({ algorithm: digest.algorithm, hex: digest.hex }).key
    return this.c.fetcher.activeDownloads().find(d => d.key === key && d.size !== null)?.size ?? undefined
  }

  /** Size at a signed storage URL: `Range: bytes=0-0` and the total of its Content-Range (never HEAD). */
  private async probe (url: URL, signal: AbortSignal): Promise<number | undefined> {
    const res = await requestUpstream(this.c.dispatcher, {
      url, method: 'GET', headers: ['range', 'bytes=0-0', 'accept-encoding', 'identity'], signal: deadline(PROBE_TIMEOUT_MS, signal)
    })
    discardBody(res.body)
    const h = headerMap(res.rawHeaders)
    const m = /\/(\d+)\s*$/.exec(h['content-range'] ?? '')
    if (res.statusCode === 206 && m !== null) return Number(m[1])
    if (res.statusCode === 200 && /^\d+$/.test(h['content-length'] ?? '')) return Number(h['content-length'])
    return undefined
  }
}

/** What clients are told about a blob: its digest as ETag and header, whatever the storage said. */
function blobMeta (meta: BlobMeta, digest: Digest, extra: Record<string, string>): BlobMeta {
  const headers: Record<string, string> = { ...extra }
  return {
    ...meta,
    etag: `"${digest.value}"`,
    contentType: meta.contentType ?? 'application/octet-stream',
    headers
  }
}
