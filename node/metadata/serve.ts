import type { FastifyReply, FastifyRequest } from 'fastify'
import { answerBlobRequest } from '../http/blob-response.ts'
import type { BlobRequestHeaders } from '../http/blob-response.ts'
import type { BlobMeta } from '../fetch/response-meta.ts'
import { acceptsGzip } from '../rewrite/codec.ts'
import type { MetadataCache } from './cache.ts'
import type { MetadataResult } from './types.ts'

export interface SendMetadataOptions {
  /** Request headers the representation depends on (e.g. `Accept`); `Accept-Encoding` is added when gzip applies. */
  vary?: readonly string[]
  /** Headers set or replaced on the answer (e.g. a negotiated Content-Type). */
  headers?: Readonly<Record<string, string>>
  /** Gzip toward clients that accept it; default: for text, JSON, HTML and XML bodies of 1 KiB or more. */
  gzip?: boolean
}

const COMPRESSIBLE = /^(?:text\/|application\/(?:[\w.+-]*\+)?(?:json|xml|javascript)\b|application\/vnd\.pypi\.simple)/i
const MIN_GZIP = 1024

function one (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

function mergeVary (headers: Record<string, string>, names: readonly string[]): void {
  const have = (headers.vary ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
  for (const n of names) if (!have.some(h => h.toLowerCase() === n.toLowerCase())) have.push(n)
  if (have.length > 0) headers.vary = have.join(', ')
}

/**
 * Answers a GET or HEAD from a metadata result: cached bodies with their ETag, Last-Modified,
 * If-None-Match / If-Modified-Since → 304, Range → 206/416 (JLAP readers use ranges), gzip on request;
 * remembered 404/410 and live upstream answers with their status and body. The real length is always
 * sent, HEAD included.
 */
export async function sendMetadata (cache: MetadataCache, request: FastifyRequest, reply: FastifyReply,
  result: MetadataResult, options: SendMetadataOptions = {}): Promise<void> {
  const head = request.method === 'HEAD'
  const headers: Record<string, string> = { ...result.headers, ...options.headers, 'x-cache': result.fromCache ? 'HIT' : 'MISS' }
  const vary = [...(options.vary ?? [])]
  let answer = result
  const type = headers['content-type'] ?? ''
  const compressible = headers['content-encoding'] === undefined && (options.gzip ?? COMPRESSIBLE.test(type))
  if (compressible && result.etag !== null) vary.push('Accept-Encoding')
  mergeVary(headers, vary)

  if (result.etag === null || result.status !== 200) {
    // Uncached answers and remembered 404/410: the body as it came, no conditionals or ranges.
    if (result.etag !== null) headers.etag = result.etag
    headers['content-length'] = String(result.body.size)
    reply.code(result.status).headers(headers)
    await reply.send(head ? undefined : result.body.open())
    return
  }

  const wantsRange = request.headers.range !== undefined
  if (compressible && !wantsRange && result.body.size >= MIN_GZIP && acceptsGzip(one(request.headers['accept-encoding']))) {
    const zipped = await cache.gzip(result)
    if (zipped !== null) {
      answer = zipped
      headers['content-encoding'] = 'gzip'
    }
  }
  const meta: BlobMeta = {
    size: answer.body.size,
    etag: answer.etag ?? '',
    lastModified: answer.lastModified,
    contentType: headers['content-type'] ?? null,
    headers,
    validator: { etag: null, lastModified: answer.lastModified }
  }
  const conditional: BlobRequestHeaders = {
    range: one(request.headers.range),
    'if-range': one(request.headers['if-range']),
    'if-none-match': one(request.headers['if-none-match']),
    'if-modified-since': one(request.headers['if-modified-since'])
  }
  const decided = answerBlobRequest(meta, conditional)
  const out = decided.status === 304 ? { ...decided.headers, ...pick(headers, ['vary', 'cache-control', 'warning', 'x-aimirror-stale']) } : decided.headers
  reply.code(decided.status).headers(out)
  if (head || !('start' in decided)) {
    await reply.send()
    return
  }
  await reply.send(answer.body.open(decided.start, decided.end ?? answer.body.size))
}

function pick (headers: Record<string, string>, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const n of names) if (headers[n] !== undefined) out[n] = headers[n]
  return out
}
