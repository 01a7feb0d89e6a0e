import type { BlobHandle, UpstreamResponse } from '../fetch/fetcher.ts'
import type { BlobMeta } from '../fetch/response-meta.ts'
import { STALE_HEADERS } from '../metadata/cache.ts'
import { answerBlobRequest } from './blob-response.ts'
import { sendChunks } from './chunk-sender.ts'
import type { BlobRequestHeaders } from './blob-response.ts'
import type { StrategyContext } from './strategy.ts'

/** Upstream error headers never relayed as such (framing is ours). */
const DROP_FROM_ERROR = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive'])

function header (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** The conditional and Range headers of the client's request. */
export function blobRequestHeaders (ctx: StrategyContext): BlobRequestHeaders {
  return {
    range: header(ctx, 'range'),
    'if-range': header(ctx, 'if-range'),
    'if-none-match': header(ctx, 'if-none-match'),
    'if-modified-since': header(ctx, 'if-modified-since'),
    'if-match': header(ctx, 'if-match'),
    'if-unmodified-since': header(ctx, 'if-unmodified-since')
  }
}

/** Relays an upstream non-2xx answer the fetch engine returned (status, headers, buffered body). */
export async function sendUpstreamAnswer (ctx: StrategyContext, res: UpstreamResponse, transform?: (headers: Record<string, string>) => Record<string, string>): Promise<void> {
  let headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(res.headers)) if (!DROP_FROM_ERROR.has(k)) headers[k] = v
  if (transform !== undefined) headers = transform(headers)
  headers['content-length'] = String(res.body.length)
  ctx.reply.code(res.status).headers(headers)
  await ctx.reply.send(ctx.request.method === 'HEAD' ? undefined : res.body)
}

/**
 * Answers GET/HEAD from a blob handle: conditionals, Range/206/416, real length; streams the chosen
 * bytes and releases the handle when the response closes. `meta` replaces the handle's own description
 * (an ecosystem handler that knows better headers).
 */
export async function sendBlob (ctx: StrategyContext, handle: BlobHandle, meta: BlobMeta = handle.meta): Promise<void> {
  const reply = ctx.reply
  const answer = answerBlobRequest(meta, blobRequestHeaders(ctx))
  // Whether the bytes were already here (also in the request's log line).
  answer.headers['x-cache'] = handle.from === 'cache' ? 'HIT' : 'MISS'
  if (handle.stale === true) Object.assign(answer.headers, STALE_HEADERS)
  if (ctx.request.method === 'HEAD' || !('start' in answer) || answer.end === 0) {
    reply.code(answer.status).headers(answer.headers)
    handle.release()
    await reply.send()
    return
  }
  const end = answer.end ?? Number.POSITIVE_INFINITY
  const chunks = handle.chunks?.(answer.start, end)
  if (chunks !== undefined) {
    // The head goes with the first bytes: a failure before them leaves the reply as it was (an error
    // answer, or another try, has none of this one's headers).
    await sendChunks(reply, chunks, () => { handle.release() }, () => { reply.code(answer.status).headers(answer.headers) })
    return
  }
  reply.code(answer.status).headers(answer.headers)
  const stream = handle.open(answer.start, end)
  reply.raw.once('close', () => {
    stream.destroy()
    handle.release()
  })
  await reply.send(stream)
}
