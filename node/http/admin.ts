import type { FastifyInstance, FastifyReply, FastifyRequest, LogLevel } from 'fastify'
import { MethodNotAllowedError } from '../errors.ts'
import { redactSignature } from '../signed-url.ts'
import type { CacheStatsProvider, DownloadsProvider } from './providers.ts'

export interface AdminComponents {
  downloads?: DownloadsProvider
  cacheStats: CacheStatsProvider
  /** Upstream origins taken as away now (their cached answers served at once). */
  upstreamsAway?: () => Array<{ origin: string, until: string }>
}

/**
 * `/health` → `{"status":"ok","active_downloads":N,"downloads":[cache keys],"progress":[...],
 * "upstreams_away":[{origin, until}]}` and
 * `/stats` → `{"cache":{"total_size_mb":..,"file_count":..}}` (seed shapes). Registered as exact routes,
 * so they win over the catch-all for every method; only GET and HEAD are allowed.
 */
export function registerAdminRoutes (app: FastifyInstance, components: AdminComponents): void {
  registerReadOnly(app, '/health', async (_request, reply) => {
    const list = components.downloads?.list() ?? []
    reply.header('cache-control', 'no-store')
    // The seed's shape: `downloads` is the list of cache keys; each one's progress is in `progress`.
    // Keys and URLs keep a query's names, not its secrets (`?access_token=`): /health is not behind a login.
    const downloads = list.map(d => redactSignature(typeof d === 'string' ? d : String((d as { key?: unknown }).key)))
    const progress = list.filter(d => typeof d !== 'string').map(redactedProgress)
    return { status: 'ok', active_downloads: list.length, downloads, progress, upstreams_away: components.upstreamsAway?.() ?? [] }
  })
  registerReadOnly(app, '/stats', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { cache: await components.cacheStats() }
  })
}

function redactedProgress (entry: unknown): unknown {
  const e = entry as { key?: unknown, url?: unknown }
  return {
    ...e,
    ...(typeof e.key === 'string' ? { key: redactSignature(e.key) } : {}),
    ...(typeof e.url === 'string' ? { url: redactSignature(e.url) } : {})
  }
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']

/**
 * A path the node answers itself: an exact route for every method, so no rule ever gets it; GET and HEAD
 * are answered, anything else is a 405.
 */
export function registerReadOnly (app: FastifyInstance, url: string, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>): void {
  app.route({
    method: METHODS,
    url,
    // Polled (the dashboard every 2 s, health checks, Prometheus): two lines per request would drown the
    // info log; they are logged at debug.
    logLevel: quieter(app.log.level),
    handler: async (request, reply) => {
      if (request.method !== 'GET' && request.method !== 'HEAD') throw new MethodNotAllowedError(undefined, { detail: { allow: 'GET, HEAD' } })
      return await handler(request, reply)
    }
  })
}

/** The node's log level, but warn for info (the parent's level may be any of pino's). */
function quieter (level: string): LogLevel {
  return (level === 'info' ? 'warn' : level) as LogLevel
}
