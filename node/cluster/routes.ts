import { hostname } from 'node:os'
import type { FastifyInstance } from 'fastify'
import { registerReadOnly } from '../http/admin.ts'
import type { CacheStatsProvider } from '../http/providers.ts'
import type { NodeStats } from '../../protocol/messages.ts'
import type { Cluster } from './cluster.ts'
import { clusterStats, clusterTotals, peersView } from './view.ts'
import type { ClusterStatsView, NodeView, PeersView } from './view.ts'

export interface ClusterRoutesComponents {
  /** The running cluster; null when it is off (the views then show this node alone). */
  cluster: () => Cluster | null
  cacheStats?: CacheStatsProvider
  /** Downloads under way (as /health counts them) and the cache budget, for this node alone. */
  activeDownloads?: () => number
  maxBytes?: () => number
}

/**
 * `GET /cluster/stats` (every reachable node's cache size, blobs, hits, bytes from cache / peers /
 * upstream, active downloads, and totals) and `GET /peers` (connected peers). Exact routes, so they
 * win over rules.
 */
export function registerClusterRoutes (app: FastifyInstance, components: ClusterRoutesComponents): void {
  const selfStats = nodeStatsOf(components)
  registerReadOnly(app, '/cluster/stats', async (_request, reply): Promise<ClusterStatsView> => {
    reply.header('cache-control', 'no-store')
    const cluster = components.cluster()
    if (cluster !== null) return await clusterStats(cluster)
    const self: NodeView = { ...await selfStats(), self: true, reachable: true }
    return { enabled: false, cluster: '', mode: 'open', nodes: [self], totals: clusterTotals([self]) }
  })
  registerReadOnly(app, '/peers', async (_request, reply): Promise<PeersView> => {
    reply.header('cache-control', 'no-store')
    const cluster = components.cluster()
    if (cluster === null) return { enabled: false, self: null, peers: [] }
    return peersView(cluster)
  })
}

/** This node's numbers: the cluster's own when it runs, else the cache's with no peers. */
export function nodeStatsOf (components: ClusterRoutesComponents): () => Promise<NodeStats> {
  const startedAt = Date.now()
  return async () => {
    const cluster = components.cluster()
    if (cluster !== null) return cluster.localStats()
    const s = await components.cacheStats?.()
    return {
      peer_id: '', host: hostname(), cluster: '', uptime_s: Math.floor((Date.now() - startedAt) / 1000),
      cache: { size_bytes: Number(s?.total_size_bytes ?? 0), blobs: Number(s?.file_count ?? 0), max_bytes: components.maxBytes?.() ?? 0 },
      hits: Number(s?.hits ?? 0), misses: Number(s?.misses ?? 0), bytes_from_cache: Number(s?.bytes_from_cache ?? 0),
      bytes_from_peers: 0, bytes_from_upstream: Number(s?.bytes_from_upstream ?? 0), bytes_to_peers: 0, peers: 0,
      active_downloads: components.activeDownloads?.() ?? 0, peer_bans: 0
    }
  }
}
