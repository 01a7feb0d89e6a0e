import type { Fetcher } from '../fetch/fetcher.ts'
import type { BlobIdentity } from '../fetch/identity.ts'
import { sendBlob, sendUpstreamAnswer } from '../http/blob-reply.ts'
import { rangeStartHint } from '../http/blob-response.ts'
import type { StrategyContext } from '../http/strategy.ts'

/** Client headers that go upstream with an artifact fetch (credentials, identification). */
const FORWARDED = ['authorization', 'user-agent', 'cookie']

function firstHeader (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * Serves an immutable artifact (wheel, tarball, package) through the fetch engine under `identity`
 * (a published digest where the ecosystem gives one, verified; else the URL), with the rule's
 * download settings; `chunkSize` overrides the rule's piece size. Upstream errors (404) are relayed.
 */
export async function serveArtifact (ctx: StrategyContext, fetcher: Fetcher, identity: BlobIdentity,
  options: { chunkSize?: number, url?: URL } = {}): Promise<void> {
  const rule = ctx.rule
  const forward: Record<string, string> = {}
  for (const name of FORWARDED) {
    const v = firstHeader(ctx, name)
    if (v !== undefined) forward[name] = v
  }
  const acquired = await fetcher.acquire(identity, { url: options.url ?? ctx.upstreamUrl, headers: forward }, {
    signal: ctx.signal,
    hint: rangeStartHint(firstHeader(ctx, 'range')),
    chunkSize: options.chunkSize ?? rule.chunk_size,
    concurrency: rule.concurrency,
    minSize: rule.min_size,
    maxSize: rule.max_size,
    replayHeaders: rule.head_meta_headers
  })
  if (acquired.kind === 'upstream-response') await sendUpstreamAnswer(ctx, acquired)
  else await sendBlob(ctx, acquired)
}
