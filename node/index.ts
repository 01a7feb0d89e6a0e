import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Dispatcher } from 'undici'
import type { Config, HandlerName } from '../config/types.ts'
import type { Cluster } from './cluster/cluster.ts'
import { nodeStatsOf, registerClusterRoutes } from './cluster/routes.ts'
import { registerDashboard } from './http/dashboard.ts'
import { registerMetricsRoute } from './http/metrics.ts'
import { createFetchEngine } from './fetch/engine.ts'
import { createHfHandler } from './handlers/hf/handler.ts'
import { createOciAuth } from './handlers/oci/auth.ts'
import { createOciHandler } from './handlers/oci/handler.ts'
import { TOKEN_PATH } from './handlers/oci/api-path.ts'
import { createCondaHandler } from './handlers/conda/handler.ts'
import { createCranHandler } from './handlers/cran/handler.ts'
import { createNpmHandler } from './handlers/npm/handler.ts'
import { createPypiHandler } from './handlers/pypi/handler.ts'
import { createHandlerRegistry } from './handlers/registry.ts'
import type { Handler, HandlerRegistry } from './handlers/registry.ts'
import { listenShared } from './http/acceptors.ts'
import type { Acceptors } from './http/acceptors.ts'
import { createProxyStrategy } from './http/proxy.ts'
import type { ProxyInit } from './http/proxy.ts'
import type { CacheStatsProvider, DownloadsProvider } from './http/providers.ts'
import { createHttpServer } from './http/server.ts'
import type { Strategy } from './http/strategy.ts'
import { createLogger } from './log.ts'
import { createMetadataCache } from './metadata/cache.ts'
import { hintBudget, metadataBudget } from './metadata/space.ts'
import type { MetadataCache } from './metadata/cache.ts'
import type { Logger } from './log.ts'
import { AwayOrigins } from './upstream/away.ts'
import { createRewritePlan } from './rewrite/rules.ts'
import type { RewritePlan } from './rewrite/rules.ts'
import { createRouter } from './router/router.ts'
import type { Router } from './router/router.ts'
import { createUpstreamDispatcher } from './upstream/dispatcher.ts'
import { sendingOwnVia } from './upstream/via.ts'
import { startStep } from './start-errors.ts'
import { hostPort } from './http/host-port.ts'
import { watchDirectory } from './store/dir-watch.ts'

/** Listening sockets on the API port. */
const API_ACCEPTORS = 8

export type { Strategy, StrategyContext, Strategies } from './http/strategy.ts'
export type { CacheStats, CacheStatsProvider, DownloadsProvider } from './http/providers.ts'

/** The parts a node is made of; built once by createNode and handed to whoever needs them. */
export interface NodeComponents {
  readonly config: Config
  readonly logger: Logger
  /** The shared upstream pool (Agent, or ProxyAgent with server.upstream_proxy). */
  readonly dispatcher: Dispatcher
  readonly router: Router
  readonly rewritePlan: RewritePlan
  readonly handlers: HandlerRegistry
  /** The `proxy` strategy, for strategies that fall back to plain proxying. */
  readonly proxy: Strategy
  /** Shared cache of index pages, packuments, repodata, API JSON, manifests by tag (node/metadata). */
  readonly metadata: MetadataCache
  readonly http: FastifyInstance
  /** The LAN cluster once started; null when `cluster.enabled` is off (or a test replaced the fetch engine). */
  readonly cluster: Cluster | null
}

/** Collaborators tests or later layers supply instead of the defaults. */
export interface NodeOverrides {
  logger?: Logger
  dispatcher?: Dispatcher
  /** Builds the `parallel` strategy from the assembled components (fetch engine). */
  parallel?: (components: Omit<NodeComponents, 'http' | 'cluster'>) => Strategy
  /** Replaces `proxy` (rarely useful outside tests). */
  proxy?: Strategy
  /** Settings of the default `proxy` strategy (e.g. the rewrite size cap). */
  proxyInit?: ProxyInit
  handlers?: Partial<Record<HandlerName, Handler>>
  downloads?: DownloadsProvider
  cacheStats?: CacheStatsProvider
}

export interface NodeAddress {
  host: string
  port: number
  /** `http://host:port`, IPv6 in brackets. */
  url: string
}

export interface AimirrorNode {
  readonly components: NodeComponents
  /** Listens on server.host:server.port (0 = any free port). Idempotent. */
  start: () => Promise<void>
  /**
   * Stops accepting, lets in-flight requests finish for up to `deadlineMs` (default
   * server.shutdown_timeout_s), then destroys what is left and closes the upstream pool. Idempotent.
   */
  stop: (options?: { deadlineMs?: number }) => Promise<void>
  /** Where the node listens; throws when it is not listening. */
  address: () => NodeAddress
  /**
   * Settles with the reason when the cache's index is removed or replaced while the node runs: the node
   * should then be stopped and started again (`aimirror start` does so itself).
   */
  readonly cacheLost: Promise<string>
}

/** The one place that wires a node: logger, upstream pool, router, rewriting, handlers, strategies, HTTP. */
export function createNode (config: Config, overrides: NodeOverrides = {}): AimirrorNode {
  const logger = overrides.logger ?? createLogger(config.logging)
  // Every upstream request says it came through this node: one that comes back is refused (see via.ts).
  const dispatcher = sendingOwnVia(overrides.dispatcher ?? createUpstreamDispatcher(config.server))
  const router = createRouter(config.rules, [{ path: TOKEN_PATH, handler: 'oci' }])
  const rewritePlan = createRewritePlan(config.content_rewrite, router.rules)
  // Registry downloads renew their upstream tokens as they go: the engine's requests pass the OCI auth interceptor
  // (so do the metadata cache's: registry tag lists; requests without the OCI marker pass untouched).
  const ociAuth = createOciAuth({ dispatcher, logger })
  // Upstreams that just failed to answer: every part serving copies it holds stops waiting for them.
  const away = new AwayOrigins({ logger })
  const metadata = createMetadataCache({ dispatcher: dispatcher.compose(ociAuth.interceptor), logger, away }, { cacheDir: config.cache.dir, maxBytes: metadataBudget(config.cache.max_size_gb), maxHints: hintBudget(config.cache.max_size_gb) })
  // The fetch engine (blob store + fetcher) backs `parallel` rules unless a test supplies its own.
  const engine = overrides.parallel === undefined ? createFetchEngine(config, { dispatcher: dispatcher.compose(ociAuth.interceptor), logger, away }) : null
  const handlers = createHandlerRegistry({
    hf: engine === null ? undefined : createHfHandler({ fetcher: engine.fetcher, dispatcher, metadata, rewritePlan, logger }, { dir: join(config.cache.dir, 'hf') }),
    pypi: createPypiHandler({ metadata, fetcher: engine?.fetcher, rewritePlan, logger }),
    npm: createNpmHandler({ metadata, fetcher: engine?.fetcher, rewritePlan, logger }),
    cran: createCranHandler({ metadata, fetcher: engine?.fetcher, logger }),
    conda: createCondaHandler({ metadata, fetcher: engine?.fetcher, rewritePlan, logger }),
    oci: engine === null ? undefined : createOciHandler({ oci: config.oci, dispatcher, fetcher: engine.fetcher, store: engine.store, auth: ociAuth, metadata, logger }, { dir: join(config.cache.dir, 'oci') }),
    ...overrides.handlers
  })
  const proxy = overrides.proxy ?? createProxyStrategy({ dispatcher, rewritePlan, logger, pacer: engine?.fetcher.pacer }, overrides.proxyInit)
  const base = { config, logger, dispatcher, router, rewritePlan, handlers, proxy, metadata }
  const parallel = overrides.parallel?.(base) ?? engine?.parallel(proxy)
  const hardStop = new AbortController()
  const http = createHttpServer({
    config,
    logger,
    router,
    handlers,
    strategies: parallel === undefined ? { proxy } : { proxy, parallel },
    downloads: overrides.downloads ?? engine?.downloads,
    cacheStats: overrides.cacheStats ?? engine?.cacheStats,
    upstreamsAway: () => away.list()
  }, { stopSignal: hardStop.signal })
  // The libp2p stack is loaded only when the cluster is on (it costs seconds of start-up on a busy machine).
  let cluster: Cluster | null = null
  async function startCluster (): Promise<void> {
    if (!config.cluster.enabled || engine === null) return
    const { Cluster } = await import('./cluster/cluster.ts')
    cluster = new Cluster({ store: engine.store, fetcher: engine.fetcher, logger }, { config: config.cluster, dataDir: config.cache.dir })
    await cluster.start()
    // Downloads with a published sha256 take peers as sources beside the upstream.
    engine.fetcher.useSources(cluster)
  }
  const statsViews = {
    cluster: () => cluster,
    cacheStats: overrides.cacheStats ?? engine?.cacheStats,
    activeDownloads: () => (overrides.downloads ?? engine?.downloads)?.list().length ?? 0,
    maxBytes: () => engine?.store.maxBytes ?? 0
  }
  registerClusterRoutes(http, statsViews)
  registerMetricsRoute(http, { stats: nodeStatsOf(statsViews), upstreamsAway: () => away.list() })
  registerDashboard(http)
  const components: NodeComponents = { ...base, http, get cluster () { return cluster } }

  let starting: Promise<void> | null = null
  let stopping: Promise<void> | null = null
  let acceptors: Acceptors | null = null
  const { promise: cacheLost, resolve: loseCache } = Promise.withResolvers<string>()
  let cacheWatch: { stop: () => void } | null = null

  /** Clients' new connections are accepted several per event-loop turn, also while the node is busy (see listenShared). */
  async function listen (): Promise<void> {
    const { host, port } = config.server
    acceptors = await startStep(`cannot listen on ${hostPort(host, port)}`, 'server.host, server.port', async () =>
      await listenShared(host, port, API_ACCEPTORS, async options => {
        await http.listen(options)
        return http.server
      }))
  }

  async function stopOnce (deadlineMs: number): Promise<void> {
    if (starting !== null) await starting.catch(() => {})
    cacheWatch?.stop()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<'deadline'>((resolve) => { timer = setTimeout(() => resolve('deadline'), deadlineMs) })
    // fastify.close stops accepting, closes idle keep-alive sockets and waits for in-flight requests.
    const closed = Promise.all([http.close(), acceptors?.close()]).then(() => 'closed' as const)
    const outcome = await Promise.race([closed, deadline])
    clearTimeout(timer)
    if (outcome === 'deadline') {
      logger.warn({ deadlineMs }, 'stop deadline reached, destroying open connections')
      hardStop.abort()
      http.server.closeAllConnections()
      await closed
    }
    engine?.fetcher.useSources(null)
    await (cluster as Cluster | null)?.stop()
    await engine?.stop()
    await metadata.stop()
    if (overrides.dispatcher === undefined) {
      // Requests still holding the pool (stalled upstreams) are cut after a short grace period.
      let graceTimer: NodeJS.Timeout | undefined
      const grace = new Promise<'grace'>((resolve) => { graceTimer = setTimeout(() => resolve('grace'), 1000) })
      const poolClosed = dispatcher.close().then(() => 'closed' as const, () => 'grace' as const)
      if (await Promise.race([poolClosed, grace]) === 'grace') await dispatcher.destroy().catch(() => {})
      clearTimeout(graceTimer)
    }
  }

  return {
    components,
    async start () {
      if (stopping !== null) throw new Error('node was stopped')
      const startEngine = async (): Promise<void> => {
        if (engine === null) return
        await startStep(`cannot use the cache directory ${config.cache.dir}`, 'cache.dir', async () => { await engine.start() })
        const watch = watchDirectory(engine.store.layout.indexDir)
        cacheWatch = watch
        watch.lost.then(loseCache, () => {})
      }
      starting ??= startEngine().then(startCluster).then(async () => await metadata.start()).then(listen).then(() => {
        logger.info({ address: http.server.address() }, 'aimirror node listening')
      })
      try {
        await starting
      } catch (err) {
        // What did start (the cluster, the index) must not keep the process alive without its API.
        stopping ??= stopOnce(2000)
        await stopping.catch(() => {})
        throw err
      }
    },
    async stop (options = {}) {
      stopping ??= stopOnce(options.deadlineMs ?? config.server.shutdown_timeout_s * 1000)
      await stopping
    },
    cacheLost,
    address () {
      const addr = http.server.address()
      if (addr === null || typeof addr === 'string') throw new Error('node is not listening')
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
      return { host: addr.address, port: addr.port, url: `http://${host}:${addr.port}` }
    }
  }
}
