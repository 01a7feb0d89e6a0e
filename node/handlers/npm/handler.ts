import { canonicalUrl, urlIdentity } from '../../fetch/identity.ts'
import { serveArtifact } from '../artifact.ts'
import type { Handler } from '../types.ts'
import { parseHint, tarballIdentity } from './integrity.ts'
import { classifyNpmPath } from './paths.ts'
import { learnTarballDigests, servePackument } from './serve-packument.ts'
import type { NpmComponents } from './types.ts'

export type { NpmComponents } from './types.ts'

/**
 * npm registries (npm, pnpm, yarn): packuments through the metadata cache with tarball links rewritten
 * to the mirror; tarballs through the fetch engine, keyed and verified by the packument's
 * `dist.integrity` (sha512) of their packument (by `dist.shasum`, sha1, for old packages that publish
 * nothing else; a tarball asked for first has its packument read then), else by URL. Search, audit, login and other
 * methods are left to the rule's strategy (proxied).
 */
export function createNpmHandler (components: NpmComponents): Handler {
  return {
    name: 'npm',
    async handle (ctx) {
      const method = ctx.request.method
      if (method !== 'GET' && method !== 'HEAD') return false
      const path = classifyNpmPath(ctx.upstreamUrl.pathname.slice(upstreamBasePath(ctx.rule.upstream).length))
      if (path === null) return false
      if (path.kind === 'packument') {
        await servePackument(ctx, components, path.name)
        return true
      }
      const fetcher = components.fetcher
      if (fetcher === undefined) return false
      // `@scope%2fname/-/…` and `@scope/name/-/…` are one tarball (packuments name it the second way).
      const url = new URL(ctx.upstreamUrl)
      url.pathname = url.pathname.replace(/%2[fF]/, '/')
      const hintKey = `npm:${canonicalUrl(url)}`
      let hint = parseHint(await components.metadata.recall(hintKey))
      if (hint === null) {
        // Asked for before its packument passed through here (a lockfile install): the packument is read
        // first, so the tarball is verified like any other (without one it goes unverified). A copy
        // already cached by its URL is served at once, its packument read meanwhile: the next request
        // takes the verified tarball if the copy was not it.
        const learn = learnTarballDigests(ctx, components, path.name).catch((err: unknown) => {
          components.logger.debug({ name: path.name, err: (err as Error).message }, 'npm: no packument for an unverified tarball')
        })
        if (!(await fetcher.holds(urlIdentity(url)))) {
          await learn
          hint = parseHint(await components.metadata.recall(hintKey))
        }
      }
      await serveArtifact(ctx, fetcher, hint === null ? urlIdentity(url) : tarballIdentity(url, hint))
      return true
    }
  }
}

/** The path of a registry's base URL (`https://host/registry` → `/registry`), without a trailing slash. */
function upstreamBasePath (upstream: string): string {
  return new URL(upstream).pathname.replace(/\/+$/, '')
}
