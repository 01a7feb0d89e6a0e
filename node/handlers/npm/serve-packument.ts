import { createHash } from 'node:crypto'
import type { StrategyContext } from '../../http/strategy.ts'
import { clientHasCopy, clientRevalidates } from '../../metadata/client-revalidate.ts'
import { sendMetadata } from '../../metadata/serve.ts'
import { choosePackumentFormat, UPSTREAM_ACCEPT } from './paths.ts'
import { rewritePackument } from './packument.ts'
import type { NpmComponents } from './types.ts'

function header (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * A packument (or one version's manifest), cached per representation (abbreviated corgi or full JSON,
 * chosen from Accept; `Vary: Accept`) and per credential, with `dist.tarball` rewritten to absolute
 * mirror URLs under the same mount prefix. The digests it publishes are remembered for the tarball
 * requests that follow.
 *
 * npm asks for a fresh packument (`--prefer-online`, or its own cache copy past the registry's max-age)
 * with a bare conditional request, no Cache-Control, so a request carrying If-None-Match /
 * If-Modified-Since is revalidated upstream too: npm then sees what the registry would have told it.
 * Requests without a copy (first fetches, other machines) are served from the cache within its TTL.
 */
export async function servePackument (ctx: StrategyContext, components: NpmComponents, name: string): Promise<void> {
  const { metadata, rewritePlan } = components
  const log = components.logger.child({ component: 'npm' })
  const format = choosePackumentFormat(header(ctx, 'accept'))
  const headers: Record<string, string> = { accept: UPSTREAM_ACCEPT[format] }
  const authorization = header(ctx, 'authorization')
  if (authorization !== undefined) headers.authorization = authorization
  const npmSession = header(ctx, 'npm-session')
  if (npmSession !== undefined) headers['npm-session'] = npmSession
  const scope = authorization === undefined ? '' : `:auth=${createHash('sha256').update(authorization).digest('hex').slice(0, 24)}`
  // `@scope%2fname` and `@scope/name` are one document.
  const tail = ctx.upstreamUrl.pathname.replace(/%2[fF]/, '/')
  const result = await metadata.fetch({
    key: `npm:${format}:${ctx.upstreamUrl.origin}${decodeURIComponent(tail)}${ctx.upstreamUrl.search}${scope}`,
    url: ctx.upstreamUrl,
    headers,
    ttlMs: ctx.rule.metadata_ttl_s * 1000,
    revalidate: clientRevalidates(ctx.request.headers) || clientHasCopy(ctx.request.headers),
    signal: ctx.signal
  })
  let shown = result
  if (result.status === 200 && (result.headers['content-type'] ?? '').includes('json')) {
    const links = rewritePlan.forRule(ctx.rule).links
    const docUrl = ctx.upstreamUrl
    shown = await metadata.rewrite(result, {
      // v2: sha1-only tarballs became hints too; a new id re-reads packuments cached before.
      id: `npm-v2:${ctx.rule.name}:${ctx.mirrorBase}`,
      apply: async (body) => {
        const doc = rewritePackument(body.toString('utf8'), docUrl, url => links.rewriteUrl(url.href, url, ctx.mirrorBase))
        await metadata.remember(doc.hints)
        if (doc.sha1Only > 0) log.debug({ name, tarballs: doc.sha1Only }, 'tarballs with only a sha1 shasum are verified by it')
        return Buffer.from(doc.text, 'utf8')
      }
    })
  } else if (result.headers.location !== undefined) {
    const mapped = rewritePlan.forRule(ctx.rule).links.rewriteUrl(result.headers.location, ctx.upstreamUrl, ctx.mirrorBase)
    if (mapped !== null) shown = { ...result, headers: { ...result.headers, location: mapped } }
  }
  await sendMetadata(metadata, ctx.request, ctx.reply, shown, { vary: ['Accept'] })
}
