import type { Readable, Transform } from 'node:stream'
import type { Dispatcher } from 'undici'
import { UpstreamProtocolError } from '../errors.ts'
import { decoderFor } from '../rewrite/codec.ts'
import { toUpstreamError } from '../upstream/errors.ts'
import { discardBody, requestUpstream } from '../upstream/request.ts'
import type { RawHeaders } from '../upstream/request.ts'
import type { MetadataStore, StoredEntry } from './store.ts'
import type { MetadataInfo, MetadataRequest } from './types.ts'

/** What one upstream exchange produced. */
export type UpstreamOutcome =
  /** 200, 404 or 410 stored, or a 304 / HEAD check that refreshed the cached entry. */
  | { kind: 'stored', entry: StoredEntry }
  /** Any other status: upstream's answer, not cached (body small enough to hold). */
  | { kind: 'live', status: number, headers: Record<string, string>, body: Buffer }
  /** No usable answer: unreachable, timeout, reset mid-body. */
  | { kind: 'failed', error: unknown }

/** Statuses whose answer is remembered. */
export const CACHED_STATUSES = new Set([200, 404, 410])
/** Largest uncached answer (error pages, redirects) held in memory. */
const LIVE_MAX = 1 << 20

/** Headers that describe the upstream transfer or encoding rather than the document. */
const DROPPED = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive',
  'etag', 'content-range', 'accept-ranges', 'date', 'age', 'set-cookie', 'vary', 'alt-svc', 'strict-transport-security',
  'content-md5', 'digest', 'content-digest', 'repr-digest', 'proxy-connection', 'upgrade', 'trailer', 'te'])

/** Descriptive headers of a response, lower-case, repeats joined. */
export function keptHeaders (raw: RawHeaders, keepEncoding = false): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    if (DROPPED.has(name) && !(keepEncoding && name === 'content-encoding')) continue
    const value = raw[i + 1] as string
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`
  }
  return out
}

function rawValue (raw: RawHeaders, name: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === name) return raw[i + 1] as string
  return undefined
}

/** A streaming decoder for a Content-Encoding, null when none is needed, undefined when unknown. */
function decoderOf (encoding: string | undefined): Transform | null | undefined {
  const c = (encoding ?? '').trim().toLowerCase()
  if (c === '' || c === 'identity') return null
  return decoderFor(c)
}

async function readSmall (body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > LIVE_MAX) {
      body.destroy()
      throw new UpstreamProtocolError('Upstream error response too large')
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

export function infoOf (entry: StoredEntry): MetadataInfo {
  return {
    url: entry.url,
    status: entry.status,
    headers: entry.headers,
    upstream: entry.validator,
    sha256: entry.sha256,
    size: entry.size,
    fetchedAt: entry.fetchedAt
  }
}

export interface ExchangeComponents {
  dispatcher: Dispatcher
  store: MetadataStore
}

/**
 * One upstream exchange for a metadata key: an optional HEAD check, then a GET (conditional when a cached
 * body exists). Bodies of remembered statuses are decoded and written to disk as they arrive. Never
 * throws: failures come back as `failed` so the cache can decide to serve stale.
 */
export async function exchange (components: ExchangeComponents, req: MetadataRequest, cached: StoredEntry | undefined,
  signal: AbortSignal): Promise<UpstreamOutcome> {
  const { dispatcher, store } = components
  const base: string[] = []
  for (const [k, v] of Object.entries(req.headers ?? {})) base.push(k, v)
  const has = (name: string): boolean => base.some((h, i) => i % 2 === 0 && h.toLowerCase() === name)
  if (!has('accept-encoding')) base.push('accept-encoding', 'gzip')
  try {
    if (cached !== undefined && cached.status === 200 && req.headCheck !== undefined) {
      const head = await requestUpstream(dispatcher, { url: req.url, method: 'HEAD', headers: base, signal })
      discardBody(head.body)
      if (head.statusCode >= 200 && head.statusCode < 300 && req.headCheck(keptHeaders(head.rawHeaders), infoOf(cached))) {
        return { kind: 'stored', entry: { ...cached, fetchedAt: Date.now() } }
      }
    }
    const headers = [...base]
    if (cached !== undefined && !has('if-none-match') && !has('if-modified-since')) {
      if (cached.validator.etag !== null) headers.push('if-none-match', cached.validator.etag)
      if (cached.validator.lastModified !== null) headers.push('if-modified-since', cached.validator.lastModified)
    }
    const res = await requestUpstream(dispatcher, { url: req.url, method: 'GET', headers, signal })
    if (res.statusCode === 304 && cached !== undefined) {
      discardBody(res.body)
      const fresh = keptHeaders(res.rawHeaders)
      return {
        kind: 'stored',
        entry: {
          ...cached,
          headers: { ...cached.headers, ...fresh },
          validator: {
            etag: rawValue(res.rawHeaders, 'etag') ?? cached.validator.etag,
            lastModified: rawValue(res.rawHeaders, 'last-modified') ?? cached.validator.lastModified
          },
          fetchedAt: Date.now()
        }
      }
    }
    const decoder = decoderOf(rawValue(res.rawHeaders, 'content-encoding'))
    const source = decoder === null || decoder === undefined ? res.body : res.body.pipe(decoder)
    if (decoder !== null && decoder !== undefined) res.body.once('error', (err) => decoder.destroy(err))
    if (!CACHED_STATUSES.has(res.statusCode)) {
      // Decoded like a stored body: the client may not take the coding the mirror asked upstream for.
      return { kind: 'live', status: res.statusCode, headers: keptHeaders(res.rawHeaders, decoder === undefined), body: await readSmall(source) }
    }
    const written = await store.writeBody(source, { signal })
    return {
      kind: 'stored',
      entry: {
        url: req.url.href,
        status: res.statusCode,
        // An unknown coding is stored as received and its header kept, so clients can still decode it.
        headers: keptHeaders(res.rawHeaders, decoder === undefined),
        validator: { etag: rawValue(res.rawHeaders, 'etag') ?? null, lastModified: rawValue(res.rawHeaders, 'last-modified') ?? null },
        gen: written.gen,
        size: written.size,
        sha256: written.sha256,
        fetchedAt: Date.now()
      }
    }
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    // A body that fails to decode is upstream's fault, not ours.
    const mapped = typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR_ZLIB') || code === 'ERR__ERROR_DATA')
      ? new UpstreamProtocolError('Upstream body could not be decoded', { cause: err, detail: { upstream: req.url.origin } })
      : toUpstreamError(err, req.url.origin)
    return { kind: 'failed', error: mapped }
  }
}
