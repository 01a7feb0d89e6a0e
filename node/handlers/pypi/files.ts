import { digestIdentity, urlIdentity } from '../../fetch/identity.ts'
import { sendBlob, sendUpstreamAnswer } from '../../http/blob-reply.ts'
import { rangeStartHint } from '../../http/blob-response.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import { parseHint } from './file-facts.ts'
import { decodePath, firstHeader, requestPathname } from './request-path.ts'
import type { PypiComponents } from './types.ts'

const FORWARDED = ['authorization', 'user-agent', 'cookie']
const MIN_PIECE = 64 * 1024
const MAX_AUTO_PIECE = 4 << 20

/**
 * Piece size for a file of known size: small enough that even a 1 MB wheel comes down over several
 * connections, never above the rule's chunk size.
 */
export function pieceSizeFor (size: number, concurrency: number, ruleChunk: number): number {
  const cap = ruleChunk > 0 ? ruleChunk : MAX_AUTO_PIECE
  const even = Math.ceil(size / Math.max(1, concurrency) / 16384) * 16384
  return Math.max(MIN_PIECE, Math.min(cap, even))
}

/**
 * A distribution file or its PEP 658 `.metadata`: keyed and verified by the sha256 its index page
 * published (learned when the page was served), else by URL. Answers come from the fetch engine
 * (streamed while downloading); upstream errors (404) are relayed as they are.
 */
export async function serveFile (ctx: StrategyContext, components: PypiComponents): Promise<boolean> {
  const fetcher = components.fetcher
  if (fetcher === undefined) return false
  const pathname = requestPathname(ctx)
  const hint = parseHint(await components.metadata.recall(`pypi:${decodePath(pathname)}`))
  const identity = hint === null ? urlIdentity(ctx.upstreamUrl) : digestIdentity({ algorithm: 'sha256', hex: hint.sha256 })
  const rule = ctx.rule
  const forward: Record<string, string> = {}
  for (const name of FORWARDED) {
    const v = firstHeader(ctx, name)
    if (v !== undefined) forward[name] = v
  }
  const acquired = await fetcher.acquire(identity, { url: ctx.upstreamUrl, headers: forward }, {
    signal: ctx.signal,
    hint: rangeStartHint(firstHeader(ctx, 'range')),
    chunkSize: hint?.size == null ? rule.chunk_size : pieceSizeFor(hint.size, rule.concurrency, rule.chunk_size),
    concurrency: rule.concurrency,
    minSize: rule.min_size,
    maxSize: rule.max_size,
    replayHeaders: rule.head_meta_headers
  })
  if (acquired.kind === 'upstream-response') await sendUpstreamAnswer(ctx, acquired)
  else await sendBlob(ctx, acquired)
  return true
}
