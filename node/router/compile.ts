import { compileRulePattern } from '../../config/pattern.ts'
import type { Rule } from '../../config/types.ts'

/** A rule prepared once for matching: regex compiled, prefix and upstream normalised. */
export interface CompiledRule {
  readonly rule: Rule
  readonly index: number
  /** Searched in the raw path (like Python's re.search); null = no pattern. */
  readonly pattern: RegExp | null
  /** Literal path prefix; null = no prefix. */
  readonly prefix: string | null
  /** The upstream base URL without a trailing slash. */
  readonly upstreamBase: string
  readonly upstreamOrigin: string
  /** Upstream base path without a trailing slash ('' for an origin). */
  readonly upstreamPath: string
}

export function compileRule (rule: Rule, index: number): CompiledRule {
  const base = new URL(rule.upstream)
  const upstreamPath = base.pathname.replace(/\/+$/, '')
  return {
    rule,
    index,
    pattern: rule.pattern === null ? null : compileRulePattern(rule.pattern),
    prefix: rule.path_prefix === null || rule.path_prefix === '' ? null : rule.path_prefix,
    upstreamBase: base.origin + upstreamPath,
    upstreamOrigin: base.origin,
    upstreamPath
  }
}

/**
 * Whether `pathname` lies under `prefix`. A prefix ending in `/` is a plain string prefix; one without
 * (`/npm`) matches itself and anything below it (`/npm/...`), not a sibling like `/npmjs`.
 */
export function underPrefix (pathname: string, prefix: string): boolean {
  if (prefix.endsWith('/')) return pathname.startsWith(prefix)
  return pathname === prefix || pathname.startsWith(prefix + '/')
}

/** The path after removing `prefix`, always starting with a single `/`. */
export function stripPrefix (pathname: string, prefix: string): string {
  const rest = pathname.slice(prefix.length)
  return rest.startsWith('/') ? rest : '/' + rest
}

/** Seed semantics: each search string replaced (all occurrences) by its replacement, in order. */
export function applyPathRewrite (pathname: string, rewrites: Rule['path_rewrite']): string {
  let out = pathname
  for (const { search, replace } of rewrites) {
    if (search !== '') out = out.split(search).join(replace)
  }
  return out
}
