import { discardBody } from '../../upstream/request.ts'
import type { RegistryClient } from './registry-client.ts'
import type { RegistryTarget } from './registries.ts'
import { API_VERSION_HEADER } from './replies.ts'
import type { OciRequest, Served } from './types.ts'

const RELAYED = ['content-type', 'content-length', 'docker-content-digest', 'oci-filters-applied', 'etag', 'last-modified']

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
 * `tags/list` and `referrers`: small, mutable listings, passed through with the client's credential
 * (upstream decides what it may see). Query parameters (`n`, `last`, `artifactType`) go along; `ns` does not.
 */
export async function serveListing (client: RegistryClient, req: OciRequest, suffix: string): Promise<Served> {
  const { ctx, scope, who, target } = req
  const query = new URL(ctx.request.url, 'http://mirror').searchParams
  query.delete('ns')
  const search = query.size > 0 ? `?${query.toString()}` : ''
  const res = await client.request({
    scope, cred: who.cred, method: req.head ? 'HEAD' : 'GET', path: `/v2/${scope.repo}/${suffix}${search}`, headers: req.accept, signal: ctx.signal
  })
  if (res.status === 401 || res.status === 403) {
    discardBody(res.body)
    return { status: res.status, headers: {}, what: 'repository' }
  }
  const headers: Record<string, string> = { ...API_VERSION_HEADER }
  for (const name of RELAYED) if (res.headers[name] !== undefined) headers[name] = res.headers[name] as string
  if (res.headers.link !== undefined) headers.link = rewriteLink(res.headers.link, target)
  ctx.reply.code(res.status).headers(headers)
  if (req.head) {
    discardBody(res.body)
    await ctx.reply.send()
  } else {
    await ctx.reply.send(res.body)
  }
  return null
}
