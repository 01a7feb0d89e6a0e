import type { MetadataCache } from '../../metadata/cache.ts'
import { clientRevalidates } from '../../metadata/client-revalidate.ts'
import { sendMetadata } from '../../metadata/serve.ts'
import type { MetadataResult, MetadataRewrite } from '../../metadata/types.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import type { RewritePlan } from '../../rewrite/rules.ts'
import { credentialScope } from './access.ts'
import { cleanApiJson, isJsonType } from './api-json.ts'
import { lfsFilesFromListing } from './listing-meta.ts'
import { isCommit } from './paths.ts'
import type { ApiRef } from './paths.ts'
import type { HfRecords } from './records.ts'
import { stripXetHeaders } from './xet.ts'

export interface ApiComponents {
  metadata: MetadataCache
  rewritePlan: RewritePlan
  records: HfRecords
}

function header (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Client headers the API answer depends on, sent upstream. */
export function apiForwardHeaders (ctx: StrategyContext): Record<string, string> {
  const out: Record<string, string> = { accept: header(ctx, 'accept') ?? 'application/json' }
  for (const name of ['authorization', 'user-agent']) {
    const v = header(ctx, name)
    if (v !== undefined) out[name] = v
  }
  return out
}

const XET_STRIP: MetadataRewrite = {
  id: 'hf-api-json-without-xet-v1',
  apply: (body, info) => isJsonType(info.headers['content-type']) ? cleanApiJson(body) : body
}

/**
 * GET/HEAD of the repository API (`/api/{models,datasets,spaces}/{repo}`, `/revision/{rev}`,
 * `/tree/{rev}`): through the metadata cache (fresh for the rule's `metadata_ttl_s`, stale when upstream
 * is down, upstream's errors passed on as they came), per credential scope, with `xetHash` removed from
 * the JSON, Xet headers dropped and `Link` (pagination) pointed at the mirror.
 */
export function createApiServer (components: ApiComponents): (ctx: StrategyContext, api: ApiRef) => Promise<void> {
  const { metadata, rewritePlan, records } = components
  return async function serveApi (ctx: StrategyContext, api: ApiRef): Promise<void> {
    const forward = apiForwardHeaders(ctx)
    const scope = credentialScope(forward.authorization) ?? 'anonymous'
    const key = `hf-api\n${ctx.upstreamUrl.href}\naccept=${forward.accept ?? ''}\nscope=${scope}`
    let result: MetadataResult = await metadata.fetch({
      key,
      url: ctx.upstreamUrl,
      headers: forward,
      ttlMs: ctx.rule.metadata_ttl_s * 1000,
      revalidate: clientRevalidates(ctx.request.headers),
      signal: ctx.signal
    })
    if (result.status >= 200 && result.status < 300) result = await metadata.rewrite(result, XET_STRIP)
    // A tree page at a commit names its LFS files' sha256: `/resolve` then needs no HEAD upstream for them.
    if (api.kind === 'tree' && api.revision !== null && isCommit(api.revision) && result.status === 200 && !result.fromCache &&
      isJsonType(result.headers['content-type'])) {
      const listed = lfsFilesFromListing(await result.body.read(), api.revision, forward.authorization === undefined ? 'public' : 'auth')
      records.learnFiles(api.repo, listed)
    }
    const links = rewritePlan.forRule(ctx.rule).links
    const headers = stripXetHeaders({ ...result.headers })
    if (headers.link !== undefined) headers.link = links.rewriteLinkHeader(headers.link, ctx.upstreamUrl, ctx.mirrorBase)
    await sendMetadata(metadata, ctx.request, ctx.reply, { ...result, headers }, { vary: ['Accept', 'Authorization'] })
  }
}
