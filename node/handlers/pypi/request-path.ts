import type { StrategyContext } from '../../http/strategy.ts'

/** The path the client asked for (no query), as the router saw it. */
export function requestPathname (ctx: StrategyContext): string {
  const url = ctx.request.raw.url ?? '/'
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** The query of the client's request, with its `?`, or ''. */
export function requestSearch (ctx: StrategyContext): string {
  const url = ctx.request.raw.url ?? '/'
  const q = url.indexOf('?')
  return q === -1 ? '' : url.slice(q)
}

/** The path part of the mirror's base URL (`''` when the mirror is at the root of its host). */
export function basePath (ctx: StrategyContext): string {
  return new URL(ctx.mirrorBase).pathname.replace(/\/+$/, '')
}

export function firstHeader (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** A path with percent-escapes decoded, so `%2B` and `+` name the same file (left as is when malformed). */
export function decodePath (pathname: string): string {
  try { return decodeURIComponent(pathname) } catch { return pathname }
}
