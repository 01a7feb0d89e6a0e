import type { Rule } from '../../config/types.ts'
import { BadRequestError } from '../errors.ts'
import { applyPathRewrite, compileRule, stripPrefix, underPrefix } from './compile.ts'
import type { CompiledRule } from './compile.ts'
import { parseRequestTarget } from './safe-path.ts'

export type { CompiledRule } from './compile.ts'

export interface RouteMatch {
  readonly rule: Rule
  readonly compiled: CompiledRule
  /** Where the request goes upstream; always under the rule's upstream base URL. */
  readonly upstreamUrl: URL
  /** The raw path the client asked for (no query). */
  readonly pathname: string
}

export interface Router {
  readonly rules: readonly CompiledRule[]
  /**
   * Finds the first rule serving `target` (a path, optionally with `?query`) and builds the upstream URL.
   * Returns null when no rule matches; throws BadRequestError (ERR_BAD_REQUEST) for targets that try to
   * escape (absolute-form, `//host`, dot segments).
   */
  match: (target: string) => RouteMatch | null
}

function matches (compiled: CompiledRule, pathname: string): boolean {
  if (compiled.prefix !== null && !underPrefix(pathname, compiled.prefix)) return false
  if (compiled.pattern !== null && !compiled.pattern.test(pathname)) return false
  return true
}

function buildUpstreamUrl (compiled: CompiledRule, pathname: string, search: string): URL {
  const { rule, prefix } = compiled
  let path = prefix !== null && rule.strip_prefix ? stripPrefix(pathname, prefix) : pathname
  path = applyPathRewrite(path, rule.path_rewrite)
  if (!path.startsWith('/')) path = '/' + path
  const url = new URL(compiled.upstreamBase + path + (search === '' ? '' : '?' + search))
  // Defence in depth: whatever the path and rewrites did, the result stays under the rule's upstream.
  const base = compiled.upstreamPath
  const inside = url.origin === compiled.upstreamOrigin &&
    (base === '' || url.pathname === base || url.pathname.startsWith(base + '/'))
  if (!inside) throw new BadRequestError('Path escapes the upstream', { detail: { reason: 'escapes_upstream' } })
  return url
}

/**
 * A path the mirror itself sends clients to (a handler's endpoint named in its own replies, such as the
 * registry token realm), served by the first rule of `handler` when no rule's pattern covers it.
 */
export interface OwnPath {
  readonly path: string
  readonly handler: string
}

/** Compiles the rules once; `match` tries them in order and the first match wins (seed semantics). */
export function createRouter (rules: readonly Rule[], ownPaths: readonly OwnPath[] = []): Router {
  const compiled = rules.map(compileRule)
  const fallbacks = new Map<string, CompiledRule>()
  for (const own of ownPaths) {
    const c = compiled.find(c => c.rule.handler === own.handler)
    if (c !== undefined) fallbacks.set(own.path, c)
  }
  return {
    rules: compiled,
    match (target: string): RouteMatch | null {
      const { pathname, search } = parseRequestTarget(target)
      for (const c of compiled) {
        if (!matches(c, pathname)) continue
        return { rule: c.rule, compiled: c, upstreamUrl: buildUpstreamUrl(c, pathname, search), pathname }
      }
      // A rule for registry blobs alone still issues challenges that point at the token realm.
      const c = fallbacks.get(pathname)
      if (c !== undefined) return { rule: c.rule, compiled: c, upstreamUrl: buildUpstreamUrl(c, pathname, search), pathname }
      return null
    }
  }
}
