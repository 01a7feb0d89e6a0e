import { canonicalUrl } from '../../fetch/identity.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import { clientRevalidates } from '../../metadata/client-revalidate.ts'
import { credentialScope } from '../../metadata/credential-scope.ts'
import { sendMetadata } from '../../metadata/serve.ts'
import type { MetadataResult } from '../../metadata/types.ts'
import type { RuleRewriting } from '../../rewrite/rules.ts'
import { factHints } from './file-facts.ts'
import type { FileFacts, LinkMap } from './file-facts.ts'
import { rewriteHtmlPage } from './html-page.ts'
import { rewriteJsonPage } from './json-page.ts'
import { canonicalProjectPath } from './names.ts'
import { acceptsFormat, chooseFormat, UPSTREAM_ACCEPT } from './negotiate.ts'
import type { SimpleFormat } from './negotiate.ts'
import { basePath, decodePath, firstHeader, requestPathname, requestSearch } from './request-path.ts'
import type { PypiComponents } from './types.ts'

/** Maps upstream URLs to mirror URLs: `prefix` + mirror path (prefix '' or a base path gives path-absolute links). */
function linkMap (rewriting: RuleRewriting, prefix: string): LinkMap {
  return (absolute) => {
    const mapped = rewriting.links.rewriteUrl(absolute.href, absolute, '')
    if (mapped === null) return null
    return { href: prefix + mapped, path: decodePath(new URL(mapped, 'http://mirror.invalid').pathname) }
  }
}

/** Upstream redirects (renamed projects, missing slashes) keep the client on the mirror. */
function withMirrorLocation (result: MetadataResult, ctx: StrategyContext, rewriting: RuleRewriting): MetadataResult {
  const location = result.headers.location
  if (location === undefined) return result
  const mapped = rewriting.links.rewriteUrl(location, ctx.upstreamUrl, basePath(ctx))
  return mapped === null ? result : { ...result, headers: { ...result.headers, location: mapped } }
}

/**
 * Simple API pages (`/simple/`, `/simple/<project>/`, extra indexes under a prefix) and the legacy JSON
 * API (`/pypi/<project>/json`). Project names not in PEP 503 normal form are redirected to it. The page
 * is cached per format (HTML or PEP 691 JSON, chosen from Accept; `Vary: Accept`), its file links are
 * rewritten to the mirror (path-absolute; absolute for the JSON API) with fragments, hashes and `data-*`
 * attributes untouched, and the digests it publishes are remembered for the file requests that follow.
 */
export async function serveIndex (ctx: StrategyContext, components: PypiComponents, jsonApi: boolean): Promise<void> {
  const { metadata, rewritePlan } = components
  const { request, reply, rule } = ctx
  const prefix = basePath(ctx)
  const canonical = jsonApi ? null : canonicalProjectPath(requestPathname(ctx))
  if (canonical !== null) {
    reply.code(301).headers({ location: prefix + canonical + requestSearch(ctx), 'content-length': '0', vary: 'Accept' })
    await reply.send()
    return
  }
  const format: SimpleFormat | 'api' = jsonApi ? 'api' : chooseFormat(firstHeader(ctx, 'accept'))
  const headers: Record<string, string> = { accept: format === 'api' ? 'application/json' : UPSTREAM_ACCEPT[format] }
  const authorization = firstHeader(ctx, 'authorization')
  if (authorization !== undefined) headers.authorization = authorization
  const keyOf = (f: SimpleFormat | 'api'): string => `pypi:${f}:${canonicalUrl(ctx.upstreamUrl)}${credentialScope(authorization)}`
  // The other format, when this client takes it too: served if only it is cached and the upstream is away.
  const other: SimpleFormat | null = format === 'api' ? null : format === 'json' ? 'html' : 'json'
  const result = await metadata.fetch({
    key: keyOf(format),
    alternates: other !== null && acceptsFormat(firstHeader(ctx, 'accept'), other) ? [keyOf(other)] : [],
    url: ctx.upstreamUrl,
    headers,
    ttlMs: rule.metadata_ttl_s * 1000,
    revalidate: clientRevalidates(request.headers),
    signal: ctx.signal
  })
  const rewriting = rewritePlan.forRule(rule)
  let shown = withMirrorLocation(result, ctx, rewriting)
  const type = (result.headers['content-type'] ?? '').toLowerCase()
  const kind = type.includes('json') ? 'json' : type.includes('html') ? 'html' : null
  if (result.status === 200 && kind !== null) {
    // The JSON API's consumers expect absolute URLs; simple pages get host-agnostic path-absolute ones.
    const map = linkMap(rewriting, format === 'api' ? ctx.mirrorBase : prefix)
    const pageUrl = ctx.upstreamUrl
    const learn = async (files: FileFacts[]): Promise<void> => { await metadata.remember(factHints(files)) }
    shown = await metadata.rewrite(result, {
      id: `pypi:${kind}:${rule.name}:${format === 'api' ? ctx.mirrorBase : prefix}`,
      stream: (body) => kind === 'json'
        ? rewriteJsonPage(body.open(), pageUrl, map, learn)
        : rewriteHtmlPage(() => body.open(), pageUrl, map, learn)
    })
  }
  await sendMetadata(metadata, request, reply, shown, { vary: format === 'api' ? [] : ['Accept'] })
}
