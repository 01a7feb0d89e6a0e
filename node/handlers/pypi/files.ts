import { digestIdentity, urlIdentity } from '../../fetch/identity.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import { serveArtifact } from '../artifact.ts'
import { parseHint } from './file-facts.ts'
import { decodePath, requestPathname } from './request-path.ts'
import type { PypiComponents } from './types.ts'

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
  const chunkSize = hint?.size == null ? rule.chunk_size : pieceSizeFor(hint.size, rule.concurrency, rule.chunk_size)
  await serveArtifact(ctx, fetcher, identity, { chunkSize })
  return true
}
