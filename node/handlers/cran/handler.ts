import type { BlobIdentity } from '../../fetch/identity.ts'
import { canonicalUrl, urlIdentity } from '../../fetch/identity.ts'
import type { Fetcher } from '../../fetch/fetcher.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import type { Logger } from '../../log.ts'
import type { MetadataCache } from '../../metadata/cache.ts'
import { clientRevalidates } from '../../metadata/client-revalidate.ts'
import { credentialScope } from '../../metadata/credential-scope.ts'
import { sendMetadata } from '../../metadata/serve.ts'
import { acquireArtifact, sendAcquired, serveArtifact } from '../artifact.ts'
import type { Handler } from '../types.ts'
import { classifyCranPath, rPlatform, variesByUserAgent } from './paths.ts'

export interface CranComponents {
  metadata: MetadataCache
  /** The fetch engine; without it package files are left to the rule's strategy. */
  fetcher?: Fetcher
  logger: Logger
}

function header (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Cache scope of a request: the R platform for repositories that serve per-platform binaries. */
function platformScope (ctx: StrategyContext, url: URL): string {
  const platform = variesByUserAgent(url) ? rPlatform(header(ctx, 'user-agent')) : null
  return platform === null ? '' : `#r=${platform}`
}

function identityFor (url: URL, scope: string): BlobIdentity {
  const base = urlIdentity(url)
  return scope === '' ? base : { ...base, key: base.key + scope }
}

/**
 * CRAN and CRAN-like repositories (R `install.packages`, renv, pak). `PACKAGES`, `PACKAGES.gz`,
 * `PACKAGES.rds` and other `.rds` indexes go through the metadata cache byte for byte with their real
 * status (a 404 stays a 404: R falls back from `.rds` to `.gz` to plain). Package files go through the
 * fetch engine keyed by URL; a source tarball that upstream no longer has in `src/contrib/` (a newer
 * version was published since the client read the index) is fetched from `src/contrib/Archive/<pkg>/`.
 */
export function createCranHandler (components: CranComponents): Handler {
  const { metadata } = components
  return {
    name: 'cran',
    async handle (ctx) {
      const method = ctx.request.method
      if (method !== 'GET' && method !== 'HEAD') return false
      const path = classifyCranPath(ctx.upstreamUrl.pathname)
      if (path === null) return false
      const scope = platformScope(ctx, ctx.upstreamUrl)
      if (path.kind === 'index') {
        const headers: Record<string, string> = { 'accept-encoding': 'identity' }
        const ua = header(ctx, 'user-agent')
        if (ua !== undefined) headers['user-agent'] = ua
        const authorization = header(ctx, 'authorization')
        if (authorization !== undefined) headers.authorization = authorization
        const result = await metadata.fetch({
          key: `cran:${canonicalUrl(ctx.upstreamUrl)}${scope}${credentialScope(authorization)}`,
          url: ctx.upstreamUrl,
          headers,
          ttlMs: ctx.rule.metadata_ttl_s * 1000,
          revalidate: clientRevalidates(ctx.request.headers),
          signal: ctx.signal
        })
        await sendMetadata(metadata, ctx.request, ctx.reply, result, { gzip: false })
        return true
      }
      const fetcher = components.fetcher
      if (fetcher === undefined) return false
      const identity = identityFor(ctx.upstreamUrl, scope)
      if (path.archive === null) {
        await serveArtifact(ctx, fetcher, identity)
        return true
      }
      const archiveUrl = new URL(path.archive + ctx.upstreamUrl.search, ctx.upstreamUrl)
      const archived = identityFor(archiveUrl, scope)
      // Found in Archive before: go there directly (the old path stays a 404 upstream).
      if (await metadata.recall(`cran:moved:${identity.key}`) !== undefined) {
        await serveArtifact(ctx, fetcher, archived, { url: archiveUrl })
        return true
      }
      const current = await acquireArtifact(ctx, fetcher, identity)
      if (current.kind === 'blob' || (current.status !== 404 && current.status !== 410)) {
        await sendAcquired(ctx, current)
        return true
      }
      const moved = await acquireArtifact(ctx, fetcher, archived, { url: archiveUrl })
      if (moved.kind === 'blob') {
        components.logger.info({ url: ctx.upstreamUrl.href, archive: archiveUrl.href }, 'CRAN package found in Archive')
        await metadata.remember([[`cran:moved:${identity.key}`, archiveUrl.href]])
        await sendAcquired(ctx, moved)
      } else {
        await sendAcquired(ctx, current)
      }
      return true
    }
  }
}
