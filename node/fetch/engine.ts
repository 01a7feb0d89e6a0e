import type { Dispatcher } from 'undici'
import type { Config } from '../../config/types.ts'
import { createParallelStrategy } from '../http/parallel.ts'
import type { CacheStats } from '../http/providers.ts'
import type { Strategy } from '../http/strategy.ts'
import type { AwayOrigins } from '../upstream/away.ts'
import type { Logger } from '../log.ts'
import { BlobStore } from '../store/blob-store.ts'
import { RangeSockets } from '../upstream/range-sockets.ts'
import { Fetcher } from './fetcher.ts'
import { exposedGc } from './gc-pacer.ts'
import type { ActiveDownload } from './fetcher.ts'

export interface FetchEngine {
  readonly store: BlobStore
  readonly fetcher: Fetcher
  /** The `parallel` strategy; `proxy` serves other methods. */
  parallel: (proxy: Strategy) => Strategy
  /** For /health. */
  downloads: { list: () => ActiveDownload[] }
  /** For /stats (seed keys first). */
  cacheStats: () => CacheStats
  start: () => Promise<void>
  stop: () => Promise<void>
}

const GiB = 1024 ** 3

/** Builds the blob store and the fetcher from config around the node's upstream dispatcher. */
export function createFetchEngine (config: Config, components: { dispatcher: Dispatcher, logger: Logger, away?: AwayOrigins }): FetchEngine {
  const store = new BlobStore({ logger: components.logger }, {
    dir: config.cache.dir,
    maxBytes: Math.floor(config.cache.max_size_gb * GiB),
    minFreeBytes: Math.floor(config.cache.min_free_gb * GiB),
    lruEnabled: config.cache.lru_enabled,
    partialTtlMs: config.cache.chunk_ttl_hours * 3600_000,
    verifyEveryMs: config.cache.verify_every_days * 86_400_000
  })
  const proxied = config.server.upstream_proxy !== null && config.server.upstream_proxy !== ''
  const sockets = proxied
    ? null
    : new RangeSockets({
      connectTimeoutMs: config.server.connect_timeout_s * 1000,
      readTimeoutMs: config.server.read_timeout_s * 1000
    })
  const fetcher = new Fetcher({ store, dispatcher: components.dispatcher, sockets, logger: components.logger, away: components.away }, {
    maxConcurrentDownloads: config.server.max_concurrent_downloads,
    finishAbandoned: config.cache.finish_abandoned,
    headersTimeoutMs: config.server.read_timeout_s * 1000,
    bodyTimeoutMs: config.server.read_timeout_s * 1000,
    gc: exposedGc()
  })
  let started = false
  return {
    store,
    fetcher,
    parallel: proxy => createParallelStrategy({ fetcher, proxy, logger: components.logger }),
    downloads: { list: () => fetcher.activeDownloads() },
    cacheStats: () => {
      const s = store.stats()
      return { total_size_mb: Math.round(s.total_size_bytes / 1024 / 1024 * 100) / 100, ...s }
    },
    async start () {
      if (started) return
      await store.start()
      await fetcher.start()
      started = true
    },
    async stop () {
      if (!started) return
      started = false
      await fetcher.stop()
      sockets?.close()
      await store.stop()
    }
  }
}
