import type { Acquired, Fetcher } from '../fetch/fetcher.ts'
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

export interface ArtifactOptions {
  /** Overrides the rule's piece size. */
  chunkSize?: number
  /** Where to fetch from (default: the request's upstream URL). */
  url?: URL
}

/**
 * Acquires an immutable artifact (wheel, tarball, package) from the fetch engine under `identity` (a
 * published digest where the ecosystem gives one, verified; else the URL) with the rule's download
 * settings: a blob handle, or upstream's non-2xx answer.
 */
export async function acquireArtifact (ctx: StrategyContext, fetcher: Fetcher, identity: BlobIdentity,
  options: ArtifactOptions = {}): Promise<Acquired> {
  const rule = ctx.rule
  const forward: Record<string, string> = {}
  for (const name of FORWARDED) {
    const v = firstHeader(ctx, name)
    if (v !== undefined) forward[name] = v
  }
  return await fetcher.acquire(identity, { url: options.url ?? ctx.upstreamUrl, headers: forward }, {
    signal: ctx.signal,
    hint: rangeStartHint(firstHeader(ctx, 'range')),
    chunkSize: options.chunkSize ?? rule.chunk_size,
    concurrency: rule.concurrency,
    minSize: rule.min_size,
    maxSize: rule.max_size,
    replayHeaders: rule.head_meta_headers,
    revalidateAfterMs: rule.revalidate_s === null ? undefined : rule.revalidate_s * 1000
  })
}

/** Answers the client from what acquireArtifact returned (GET/HEAD/Range/conditionals, or upstream's error). */
export async function sendAcquired (ctx: StrategyContext, acquired: Acquired): Promise<void> {
  if (acquired.kind === 'upstream-response') await sendUpstreamAnswer(ctx, acquired)
  else await sendBlob(ctx, acquired)
}

/** acquireArtifact, then sendAcquired. */
export async function serveArtifact (ctx: StrategyContext, fetcher: Fetcher, identity: BlobIdentity,
  options: ArtifactOptions = {}): Promise<void> {
  await sendAcquired(ctx, await acquireArtifact(ctx, fetcher, identity, options))
}
