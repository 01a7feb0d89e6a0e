import type { Fetcher } from '../fetch/fetcher.ts'
import { urlIdentity } from '../fetch/identity.ts'
import type { Logger } from '../log.ts'
import { answerBlobRequest, rangeStartHint } from './blob-response.ts'
import type { BlobRequestHeaders } from './blob-response.ts'
import type { Strategy, StrategyContext } from './strategy.ts'

export interface ParallelComponents {
  fetcher: Fetcher
  /** Used for methods other than GET/HEAD. */
  proxy: Strategy
  logger: Logger
}

/** Client headers that go upstream with a blob fetch (credentials for gated content, identification). */
const FORWARDED = ['authorization', 'user-agent', 'cookie']
/** Upstream error headers never relayed as such (framing is ours). */
const DROP_FROM_ERROR = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive'])

function header (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * The `parallel` strategy: GET/HEAD through the fetch engine (cache hit, joined or new parallel
 * download, streamed while it downloads), answered with real length, stable ETag, Range/206/416,
 * If-Range and If-None-Match. Other methods go to the proxy strategy.
 */
export function createParallelStrategy (components: ParallelComponents): Strategy {
  const { fetcher, proxy } = components
  return async (ctx: StrategyContext): Promise<void> => {
    const method = ctx.request.method
    if (method !== 'GET' && method !== 'HEAD') return await proxy(ctx)
    const rule = ctx.rule
    const forward: Record<string, string> = {}
    for (const name of FORWARDED) {
      const v = header(ctx, name)
      if (v !== undefined) forward[name] = v
    }
    const acquired = await fetcher.acquire(urlIdentity(ctx.upstreamUrl), { url: ctx.upstreamUrl, headers: forward }, {
      signal: ctx.signal,
      hint: rangeStartHint(header(ctx, 'range')),
      chunkSize: rule.chunk_size,
      concurrency: rule.concurrency,
      minSize: rule.min_size,
      maxSize: rule.max_size,
      replayHeaders: rule.head_meta_headers
    })
    const reply = ctx.reply
    if (acquired.kind === 'upstream-response') {
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(acquired.headers)) if (!DROP_FROM_ERROR.has(k)) headers[k] = v
      headers['content-length'] = String(acquired.body.length)
      reply.code(acquired.status).headers(headers)
      await reply.send(method === 'HEAD' ? undefined : acquired.body)
      return
    }
    const request: BlobRequestHeaders = {
      range: header(ctx, 'range'),
      'if-range': header(ctx, 'if-range'),
      'if-none-match': header(ctx, 'if-none-match'),
      'if-modified-since': header(ctx, 'if-modified-since')
    }
    const answer = answerBlobRequest(acquired.meta, request)
    reply.code(answer.status).headers(answer.headers)
    if (method === 'HEAD' || !('start' in answer) || answer.end === 0) {
      acquired.release()
      await reply.send()
      return
    }
    const stream = acquired.open(answer.start, answer.end ?? Number.POSITIVE_INFINITY)
    reply.raw.once('close', () => {
      stream.destroy()
      acquired.release()
    })
    await reply.send(stream)
  }
}
