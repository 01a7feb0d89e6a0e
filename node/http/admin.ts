import type { FastifyInstance } from 'fastify'
import { MethodNotAllowedError } from '../errors.ts'
import type { CacheStatsProvider, DownloadsProvider } from './providers.ts'

export interface AdminComponents {
  downloads?: DownloadsProvider
  cacheStats: CacheStatsProvider
}

/** Paths the node answers itself, before any rule is consulted. */
export const ADMIN_PATHS: readonly string[] = ['/health', '/stats']

/**
 * `/health` → `{"status":"ok","active_downloads":N,"downloads":[...]}` and
 * `/stats` → `{"cache":{"total_size_mb":..,"file_count":..}}` (seed shapes). Registered as exact routes,
 * so they win over the catch-all for every method; only GET and HEAD are allowed.
 */
export function registerAdminRoutes (app: FastifyInstance, components: AdminComponents): void {
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']
  const onlyRead = (method: string): void => {
    if (method !== 'GET' && method !== 'HEAD') throw new MethodNotAllowedError(undefined, { detail: { allow: 'GET, HEAD' } })
  }
  app.route({
    method: methods,
    url: '/health',
    handler: async (request, reply) => {
      onlyRead(request.method)
      const downloads = components.downloads?.list() ?? []
      reply.header('cache-control', 'no-store')
      return { status: 'ok', active_downloads: downloads.length, downloads }
    }
  })
  app.route({
    method: methods,
    url: '/stats',
    handler: async (request, reply) => {
      onlyRead(request.method)
      reply.header('cache-control', 'no-store')
      return { cache: await components.cacheStats() }
    }
  })
}
