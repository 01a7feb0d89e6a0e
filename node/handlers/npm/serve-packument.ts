import type { StrategyContext } from '../../http/strategy.ts'
import { clientHasCopy, clientRevalidates } from '../../metadata/client-revalidate.ts'
import { credentialScope } from '../../metadata/credential-scope.ts'
import { sendMetadata } from '../../metadata/serve.ts'
import type { MetadataResult } from '../../metadata/types.ts'
import { acceptsPackument, choosePackumentFormat, UPSTREAM_ACCEPT } from './paths.ts'
import type { PackumentFormat } from './paths.ts'
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
  const format = choosePackumentFormat(header(ctx, 'accept'))
  const shown = await loadPackument(ctx, components, name, ctx.upstreamUrl, format, {
    revalidate: clientRevalidates(ctx.request.headers) || clientHasCopy(ctx.request.headers)
  })
  await sendMetadata(components.metadata, ctx.request, ctx.reply, shown, { vary: ['Accept'] })
}

/**
 * Learns the digests a package's packument publishes for its tarballs, for a tarball asked for before
 * its packument passed through the mirror (`npm ci` takes URLs and integrity from the lockfile and asks
 * for no packument): the abbreviated document, through the metadata cache like a client's request.
 */
export async function learnTarballDigests (ctx: StrategyContext, components: NpmComponents, name: string): Promise<void> {
  const base = ctx.rule.upstream.replace(/\/+$/, '')
  const url = new URL(`${base}/${name.startsWith('@') ? name.replace('/', '%2f') : name}`)
  await loadPackument(ctx, components, name, url, 'corgi', { revalidate: false })
}

/** The packument at `url` in `format`, cached, its tarball links rewritten and their digests remembered. */
async function loadPackument (ctx: StrategyContext, components: NpmComponents, name: string, url: URL, format: PackumentFormat, o: { revalidate: boolean }): Promise<MetadataResult> {
  const { metadata, rewritePlan } = components
  const log = components.logger.child({ component: 'npm' })
  const headers: Record<string, string> = { accept: UPSTREAM_ACCEPT[format] }
  const authorization = header(ctx, 'authorization')
  if (authorization !== undefined) headers.authorization = authorization
  const npmSession = header(ctx, 'npm-session')
  if (npmSession !== undefined) headers['npm-session'] = npmSession
  const scope = credentialScope(authorization)
  // `@scope%2fname` and `@scope/name` are one document.
  const tail = url.pathname.replace(/%2[fF]/, '/')
  const keyOf = (f: PackumentFormat): string => `npm:${f}:${url.origin}${decodeURIComponent(tail)}${url.search}${scope}`
  const other: PackumentFormat = format === 'corgi' ? 'full' : 'corgi'
  const result = await metadata.fetch({
    key: keyOf(format),
    // The other document, when the client takes it too: served if only it is cached and the registry is away.
    alternates: acceptsPackument(header(ctx, 'accept'), other) ? [keyOf(other)] : [],
    url,
    headers,
    ttlMs: ctx.rule.metadata_ttl_s * 1000,
    revalidate: o.revalidate,
    signal: ctx.signal
  })
  if (result.status === 200 && (result.headers['content-type'] ?? '').includes('json')) {
    const links = rewritePlan.forRule(ctx.rule).links
    return await metadata.rewrite(result, {
      // v2: sha1-only tarballs became hints too; a new id re-reads packuments cached before.
      id: `npm-v2:${ctx.rule.name}:${ctx.mirrorBase}`,
      stream: (body) => rewritePackument(body.open(), url, u => links.rewriteUrl(u.href, u, ctx.mirrorBase), async (hints) => {
        await metadata.remember(hints)
        const sha1Only = hints.filter(([, digest]) => digest.startsWith('sha1:')).length
        if (sha1Only > 0) log.debug({ name, tarballs: sha1Only }, 'tarballs with only a sha1 shasum are verified by it')
      })
    })
  }
  if (result.headers.location !== undefined) {
    const mapped = rewritePlan.forRule(ctx.rule).links.rewriteUrl(result.headers.location, url, ctx.mirrorBase)
    if (mapped !== null) return { ...result, headers: { ...result.headers, location: mapped } }
  }
  return result
}
