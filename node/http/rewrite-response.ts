import { createHash } from 'node:crypto'
import { pipeline, Readable } from 'node:stream'
import { createGzip } from 'node:zlib'
import type { Logger } from '../log.ts'
import { acceptsGzip, canDecode, decodeBody, decoderFor, gzipBody, parseContentEncoding } from '../rewrite/codec.ts'
import type { RuleRewriting } from '../rewrite/rules.ts'
import { discardBody, headerValue } from '../upstream/request.ts'
import type { RawHeaders, UpstreamResponse } from '../upstream/request.ts'
import { endToEndHeaders, groupHeaders } from './headers.ts'
import type { StrategyContext } from './strategy.ts'

export interface RewriteOptions {
  maxBytes: number
  log: Logger
}

/** Headers that describe the upstream bytes, not the rewritten ones. */
const REPRESENTATION: readonly string[] = ['content-length', 'content-encoding', 'etag', 'content-md5', 'digest', 'repr-digest',
  'content-digest', 'accept-ranges', 'content-range']

interface Prefix { chunks: Buffer[], size: number, ended: boolean }

/** Reads `body` until it ends or holds more than `max` bytes; in the latter case the stream is left paused. */
function readUpTo (body: Readable, max: number): Promise<Prefix> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const cleanup = (): void => {
      body.off('data', onData); body.off('end', onEnd); body.off('error', onError)
    }
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      size += chunk.length
      if (size > max) { body.pause(); cleanup(); resolve({ chunks, size, ended: false }) }
    }
    const onEnd = (): void => { cleanup(); resolve({ chunks, size, ended: true }) }
    const onError = (err: Error): void => { cleanup(); reject(err) }
    body.on('data', onData).on('end', onEnd).on('error', onError)
  })
}

/** The untouched upstream response: what was already read, then the rest of the stream. */
function sendUntouched (ctx: StrategyContext, status: number, headers: RawHeaders, prefix: Buffer[], rest: Readable | null): void {
  ctx.reply.code(status).headers(groupHeaders(headers))
  if (ctx.request.method === 'HEAD') { if (rest !== null) discardBody(rest); void ctx.reply.send(); return }
  if (rest === null) { void ctx.reply.send(Buffer.concat(prefix)); return }
  void ctx.reply.send(Readable.from((async function * () {
    yield * prefix
    yield * rest
  })(), { objectMode: false }))
}

function weakEtag (body: Buffer): string {
  return `W/"rw-${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`
}

function etagMatches (ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false
  const strip = (t: string): string => t.trim().replace(/^W\//, '')
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || strip(t) === strip(etag))
}

function mergeVary (headers: string[], name: string): void {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() !== 'vary') continue
    const value = headers[i + 1] as string
    const has = value.split(',').some((v) => { const t = v.trim().toLowerCase(); return t === name.toLowerCase() || t === '*' })
    if (!has) headers[i + 1] = `${value}, ${name}`
    return
  }
  headers.push('vary', name)
}

/**
 * Sends a link-bearing page with its links pointing at the mirror. Up to the cap it is buffered, decoded
 * from gzip/br/deflate/zstd, rewritten, re-gzipped only for clients that accept gzip, with a fresh
 * Content-Length and a weak ETag for this variant (If-None-Match → 304); pages without links to rewrite,
 * in an unknown coding or that fail to decode are passed through untouched (upstream bytes and
 * validators). Bigger pages are rewritten as they stream (`sendStreamed`).
 */
export async function sendRewritten (ctx: StrategyContext, page: UpstreamResponse, headers: RawHeaders,
  rewriting: RuleRewriting, opts: RewriteOptions): Promise<void> {
  const { request, reply } = ctx
  const codings = parseContentEncoding(headerValue(page.rawHeaders, 'content-encoding'))
  const declared = Number(headerValue(page.rawHeaders, 'content-length') ?? 0)
  if (!canDecode(codings)) {
    opts.log.warn({ url: request.url, codings }, 'link-bearing page in a coding the node cannot undo, passed through')
    sendUntouched(ctx, page.statusCode, headers, [], page.body)
    return
  }
  if (declared > opts.maxBytes) {
    sendStreamed(ctx, page, headers, rewriting, codings, [], page.body, opts.log)
    return
  }
  const prefix = await readUpTo(page.body, opts.maxBytes)
  if (!prefix.ended) {
    sendStreamed(ctx, page, headers, rewriting, codings, prefix.chunks, page.body, opts.log)
    return
  }
  const raw = Buffer.concat(prefix.chunks, prefix.size)
  let decoded: Buffer
  try {
    decoded = await decodeBody(raw, codings, opts.maxBytes)
  } catch (err) {
    if (tooLarge(err)) {
      sendStreamed(ctx, page, headers, rewriting, codings, [raw], null, opts.log)
      return
    }
    opts.log.warn({ url: request.url, err }, 'link-bearing page could not be decoded, passed through')
    sendUntouched(ctx, page.statusCode, headers, [raw], null)
    return
  }
  // latin1 maps bytes 1:1 to code units, so everything but the ASCII URLs stays byte-identical.
  const text = decoded.toString('latin1')
  const rewritten = rewriting.links.rewriteText(text, ctx.mirrorBase)
  if (rewritten === text) {
    // Nothing to change: the upstream's bytes, length, coding and ETag stay exactly as they were.
    sendUntouched(ctx, page.statusCode, headers, [raw], null)
    return
  }
  const body = Buffer.from(rewritten, 'latin1')
  const etag = weakEtag(body)
  const gzip = acceptsGzip(request.headers['accept-encoding'])
  const sendHeaders = endToEndHeaders(headers, REPRESENTATION)
  mergeVary(sendHeaders, 'Accept-Encoding')
  sendHeaders.push('etag', etag)
  if (etagMatches(request.headers['if-none-match'], etag)) {
    reply.code(304).headers(groupHeaders(sendHeaders))
    void reply.send()
    return
  }
  const payload = gzip ? await gzipBody(body) : body
  if (gzip) sendHeaders.push('content-encoding', 'gzip')
  sendHeaders.push('content-length', String(payload.length))
  reply.code(page.statusCode).headers(groupHeaders(sendHeaders))
  void reply.send(request.method === 'HEAD' ? undefined : payload)
}

/** zlib's refusal to give more than `maxOutputLength`. */
function tooLarge (err: unknown): boolean {
  return err instanceof RangeError || (err as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE'
}

/**
 * A page bigger than the in-memory limit, rewritten as it streams: decoded, its links mapped piece by
 * piece (`textRuns`), re-gzipped for clients that take gzip. Its length is unknown ahead (chunked); its
 * weak ETag comes from the upstream's (none without one), so If-None-Match is answered before any byte
 * is read. "deflate" (zlib or raw, known only from the bytes) is passed through untouched.
 */
function sendStreamed (ctx: StrategyContext, page: UpstreamResponse, headers: RawHeaders, rewriting: RuleRewriting,
  codings: readonly string[], prefix: Buffer[], rest: Readable | null, log: Logger): void {
  const { request, reply } = ctx
  if (codings.includes('deflate')) {
    log.warn({ url: request.url }, 'large deflate-coded link-bearing page passed through')
    sendUntouched(ctx, page.statusCode, headers, prefix, rest)
    return
  }
  const upstreamEtag = headerValue(page.rawHeaders, 'etag')
  const etag = upstreamEtag === undefined
    ? null
    : `W/"rs-${createHash('sha256').update(`${upstreamEtag}\n${ctx.rule.name}\n${ctx.mirrorBase}`).digest('base64url').slice(0, 32)}"`
  const sendHeaders = endToEndHeaders(headers, REPRESENTATION)
  mergeVary(sendHeaders, 'Accept-Encoding')
  if (etag !== null) sendHeaders.push('etag', etag)
  if (etag !== null && etagMatches(request.headers['if-none-match'], etag)) {
    if (rest !== null) discardBody(rest)
    reply.code(304).headers(groupHeaders(sendHeaders))
    void reply.send()
    return
  }
  const gzip = acceptsGzip(request.headers['accept-encoding'])
  if (gzip) sendHeaders.push('content-encoding', 'gzip')
  reply.code(page.statusCode).headers(groupHeaders(sendHeaders))
  if (request.method === 'HEAD') {
    if (rest !== null) discardBody(rest)
    void reply.send()
    return
  }
  const runs = rewriting.links.textRuns(ctx.mirrorBase)
  let body: Readable = Readable.from((async function * () {
    yield * prefix
    if (rest !== null) yield * rest
  })(), { objectMode: false })
  for (const coding of [...codings].reverse()) {
    const decoder = decoderFor(coding)
    // canDecode let only codings through that have one.
    if (decoder === undefined) throw new Error(`no decoder for content-coding ${coding}`)
    body = pipeline(body, decoder, () => {})
  }
  const text = Readable.from((async function * () {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const out = runs.push(chunk.toString('latin1'))
      if (out !== '') yield Buffer.from(out, 'latin1')
    }
    const last = runs.end()
    if (last !== '') yield Buffer.from(last, 'latin1')
  })(), { objectMode: false })
  void reply.send(gzip ? pipeline(text, createGzip(), () => {}) : text)
}
