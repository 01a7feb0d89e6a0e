import type { Fetcher } from '../fetch/fetcher.ts'
import { urlIdentity } from '../fetch/identity.ts'
import { isContentChanged } from '../fetch/version.ts'
import type { Logger } from '../log.ts'
import { sendBlob, sendUpstreamAnswer } from './blob-reply.ts'
import { rangeStartHint } from './blob-response.ts'
import type { Strategy, StrategyContext } from './strategy.ts'

export interface ParallelComponents {
  fetcher: Fetcher
  /** Used for methods other than GET/HEAD. */
  proxy: Strategy
  logger: Logger
}

/** Client headers that go upstream with a blob fetch (credentials for gated content, identification). */
const FORWARDED = ['authorization', 'user-agent', 'cookie']

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
    for (let again = false; ; again = true) {
      const acquired = await fetcher.acquire(urlIdentity(ctx.upstreamUrl), { url: ctx.upstreamUrl, headers: forward }, {
        signal: ctx.signal,
        hint: rangeStartHint(header(ctx, 'range')),
        chunkSize: rule.chunk_size,
        concurrency: rule.concurrency,
        minSize: rule.min_size,
        maxSize: rule.max_size,
        replayHeaders: rule.head_meta_headers,
        keyByFinalUrl: rule.cache_key_source === 'final',
        revalidateAfterMs: rule.revalidate_s === null ? undefined : rule.revalidate_s * 1000
      })
      if (acquired.kind === 'upstream-response') return await sendUpstreamAnswer(ctx, acquired)
      try {
        await sendBlob(ctx, acquired)
        return
      } catch (err) {
        // Replaced upstream while this client waited for its first byte: it gets the new version (once).
        if (again || !isContentChanged(err) || ctx.reply.raw.headersSent) throw err
      }
    }
  }
}
