import type { MetadataCache } from '../../metadata/cache.ts'
import { sendMetadata } from '../../metadata/serve.ts'
import { acceptVariant, joinedAccept } from './accept.ts'
import { AUTH_MARKER, authMarker } from './auth-interceptor.ts'
import { USER_AGENT } from './registry-client.ts'
import type { RegistryTarget } from './registries.ts'
import { API_VERSION_HEADER } from './replies.ts'
import type { OciRequest, Served } from './types.ts'

/**
 * A pagination `Link` from upstream, pointed back at the mirror: the repository as the client named it
 * (path prefix, `ns`), path-absolute so it resolves against whatever host the client used.
 */
export function rewriteLink (link: string, target: RegistryTarget): string {
  return link.replace(/<([^>]*)>/g, (whole, ref: string) => {
    let url: URL
    try {
      url = new URL(ref, target.upstream + '/')
    } catch {
      return whole
    }
    const prefix = `/v2/${target.repo}/`
    if (!url.pathname.startsWith(prefix)) return whole
    if (target.ns !== null) url.searchParams.set('ns', target.ns)
    return `</v2/${target.name}/${url.pathname.slice(prefix.length)}${url.search}>`
  })
}

/**
 * The metadata-cache key of a listing: everything its body depends on. Like a tag's record, it names
 * the client credential (`-` when anonymous), so a listing fetched with one credential is never served
 * to another client; anonymous listings are public and shared.
 */
export function listingKey (req: Pick<OciRequest, 'scope' | 'who' | 'accept'>, pathAndQuery: string): string {
  return ['oci-listing', req.scope.upstream, req.scope.repo, pathAndQuery, acceptVariant(req.accept), req.who.cred?.key ?? '-'].join('\n')
}

/**
 * The upstream path and query of a listing: the client's query parameters (`n`, `last`, `artifactType`)
 * in a stable order, without the mirror's own `ns`.
 */
export function listingPath (repo: string, suffix: string, requestUrl: string): string {
  const query = new URL(requestUrl, 'http://mirror').searchParams
  query.delete('ns')
  query.sort()
  return `/v2/${repo}/${suffix}${query.size > 0 ? `?${query.toString()}` : ''}`
}

/**
 * `tags/list` and `referrers`: small, mutable listings, through the shared metadata cache with the
 * rule's TTL (conditional revalidation; stale with a warning, and remembered 404s, while upstream is
 * down). Upstream is asked with the client's credential, so it decides what the client may see; the
 * request carries the auth marker, which the cache's dispatcher swaps for the mirror's current token.
 * Query parameters (`n`, `last`, `artifactType`) go along; `ns` does not. HEAD is answered from the
 * same cached GET, with the real length.
 */
export async function serveListing (metadata: MetadataCache, req: OciRequest, suffix: string, ttlMs: number): Promise<Served> {
  const { ctx, scope, who, target } = req
  const pathAndQuery = listingPath(scope.repo, suffix, ctx.request.url)
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, [AUTH_MARKER]: authMarker(scope, who.cred) }
  const accept = joinedAccept(req.accept)
  if (accept !== undefined) headers.accept = accept
  const result = await metadata.fetch({
    key: listingKey(req, pathAndQuery), url: new URL(scope.upstream + pathAndQuery), headers, ttlMs, signal: ctx.signal
  })
  // Refusals are never cached: the handler turns them into the mirror's own challenge or a 403.
  if (result.status === 401 || result.status === 403) return { status: result.status, headers: {}, what: 'repository' }
  const extra: Record<string, string> = { ...API_VERSION_HEADER }
  const link = result.headers.link
  if (link !== undefined) extra.link = rewriteLink(link, target)
  await sendMetadata(metadata, ctx.request, ctx.reply, result, { headers: extra, vary: accept === undefined ? [] : ['Accept'] })
  return null
}
