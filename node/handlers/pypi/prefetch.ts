import { digestIdentity } from '../../fetch/identity.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import { parseHint } from './file-facts.ts'
import { pieceSizeFor } from './files.ts'
import { decodePath, firstHeader, requestPathname } from './request-path.ts'
import type { PypiComponents } from './types.ts'

/** Client headers that go upstream with the prefetch, as with the client's own file requests. */
const FORWARDED = ['authorization', 'user-agent', 'cookie']

/**
 * pip and uv read a wheel's PEP 658 `.metadata` while they resolve and download the wheels only once
 * resolution is done, pip one at a time. A `.metadata` request therefore names the distribution the
 * client is about to ask for: its download starts now, in the background, so downloads overlap the
 * resolution and each other instead of queueing behind one another. Only for files whose index page
 * published a sha256 (the download is keyed and verified as the client's own would be).
 * The handle is let go at once; the download finishes into the cache (`cache.finish_abandoned`) and the
 * client's request joins it or hits the cache.
 */
export async function prefetchDistribution (ctx: StrategyContext, components: PypiComponents): Promise<void> {
  const fetcher = components.fetcher
  if (fetcher === undefined) return
  const metadataPath = decodePath(requestPathname(ctx))
  const hint = parseHint(await components.metadata.recall(`pypi:${metadataPath.slice(0, -'.metadata'.length)}`))
  if (hint === null) return
  const url = new URL(ctx.upstreamUrl)
  if (!url.pathname.endsWith('.metadata')) return
  url.pathname = url.pathname.slice(0, -'.metadata'.length)
  url.search = ''
  const headers: Record<string, string> = {}
  for (const name of FORWARDED) {
    const v = firstHeader(ctx, name)
    if (v !== undefined) headers[name] = v
  }
  const rule = ctx.rule
  const acquired = await fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: hint.sha256 }), { url, headers }, {
    chunkSize: hint.size === null ? rule.chunk_size : pieceSizeFor(hint.size, rule.concurrency, rule.chunk_size),
    concurrency: rule.concurrency,
    minSize: rule.min_size,
    maxSize: rule.max_size,
    replayHeaders: rule.head_meta_headers
  })
  if (acquired.kind === 'blob') acquired.release()
}
