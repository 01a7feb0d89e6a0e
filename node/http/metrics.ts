import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { NodeStats } from '../../protocol/messages.ts'
import { registerReadOnly } from './admin.ts'

export interface MetricsComponents {
  /** This node's numbers, as /cluster/stats shows them (the cluster's are 0 with the cluster off). */
  stats: () => Promise<NodeStats>
  /** Upstream origins taken as away now (as /health lists them). */
  upstreamsAway?: () => ReadonlyArray<{ origin: string }>
}

type Read = (s: NodeStats) => number

/** name, help, value: monotonic totals are counters (`_total`), the rest gauges. */
const COUNTERS: Array<[string, string, Read]> = [
  ['aimirror_cache_hits_total', 'Requests answered from the cache.', s => s.hits],
  ['aimirror_cache_misses_total', 'Requests the cache could not answer.', s => s.misses],
  ['aimirror_bytes_from_cache_total', 'Bytes served to clients from the cache.', s => s.bytes_from_cache],
  ['aimirror_bytes_from_upstream_total', 'Bytes downloads received from upstreams.', s => s.bytes_from_upstream],
  ['aimirror_bytes_from_peers_total', 'Bytes downloads received from cluster peers.', s => s.bytes_from_peers],
  ['aimirror_bytes_to_peers_total', 'Bytes sent to cluster peers.', s => s.bytes_to_peers],
  ['aimirror_peer_bans_total', 'Peers banned for sending bad bytes.', s => s.peer_bans ?? 0]
]
const GAUGES: Array<[string, string, Read]> = [
  ['aimirror_cache_size_bytes', 'Bytes of the blobs in the cache.', s => s.cache.size_bytes],
  ['aimirror_cache_max_bytes', 'The cache budget (cache.max_size_gb).', s => s.cache.max_bytes],
  ['aimirror_cache_blobs', 'Blobs in the cache.', s => s.cache.blobs],
  ['aimirror_downloads_active', 'Downloads under way.', s => s.active_downloads],
  ['aimirror_uptime_seconds', 'Seconds since the node started.', s => s.uptime_s],
  ['aimirror_cluster_members', 'Cluster members this node is connected to.', s => s.peers]
]

/**
 * `GET /metrics`: the node's numbers in Prometheus' text format, read at each scrape from what
 * /cluster/stats shows (no bookkeeping on the byte paths), plus the process's memory and CPU.
 * prom-client is loaded at the first scrape: a node nobody scrapes does not carry it.
 */
export function registerMetricsRoute (app: FastifyInstance, components: MetricsComponents): void {
  let registry: Promise<(s: NodeStats, away: ReadonlyArray<{ origin: string }>) => Registry> | null = null
  registerReadOnly(app, '/metrics', async (_request, reply) => {
    registry ??= buildRegistry()
    const fill = await registry
    const r = fill(await components.stats(), components.upstreamsAway?.() ?? [])
    reply.header('content-type', r.contentType)
    reply.header('cache-control', 'no-store')
    return await r.metrics()
  })
}

async function buildRegistry (): Promise<(s: NodeStats, away: ReadonlyArray<{ origin: string }>) => Registry> {
  const { Counter, Gauge, Registry } = await import('prom-client')
  const registry = new Registry()
  const counters = COUNTERS.map(([name, help, read]) => ({ m: new Counter({ name, help, registers: [registry] }), read }))
  const gauges = GAUGES.map(([name, help, read]) => ({ m: new Gauge({ name, help, registers: [registry] }), read }))
  const rss = new Gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.', registers: [registry] })
  // prom-client's default names: JS heap and memory held outside it (Buffers), a leak's first sign.
  const heapUsed = new Gauge({ name: 'nodejs_heap_size_used_bytes', help: 'Process heap size used from Node.js in bytes.', registers: [registry] })
  const heapTotal = new Gauge({ name: 'nodejs_heap_size_total_bytes', help: 'Process heap size from Node.js in bytes.', registers: [registry] })
  const external = new Gauge({ name: 'nodejs_external_memory_bytes', help: 'Node.js external memory size in bytes.', registers: [registry] })
  // One series per origin while it is away: what an alert on a line or an upstream that is down watches.
  const upstreamAway = new Gauge({ name: 'aimirror_upstream_away', help: 'Upstream origins taken as away (1), their cached answers served at once.', labelNames: ['origin'], registers: [registry] })
  const cpu = new Counter({ name: 'process_cpu_seconds_total', help: 'User and system CPU time spent in seconds.', registers: [registry] })
  new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since the epoch, in seconds.', registers: [registry] })
    .set(Math.round(performance.timeOrigin / 1000))
  return (s, away) => {
    // The totals are kept by the node; each scrape sets the counters to them.
    for (const { m, read } of counters) { m.reset(); m.inc(read(s)) }
    for (const { m, read } of gauges) m.set(read(s))
    upstreamAway.reset()
    for (const { origin } of away) upstreamAway.set({ origin }, 1)
    const memory = process.memoryUsage()
    rss.set(memory.rss)
    heapUsed.set(memory.heapUsed)
    heapTotal.set(memory.heapTotal)
    external.set(memory.external)
    const used = process.cpuUsage()
    cpu.reset()
    cpu.inc((used.user + used.system) / 1e6)
    return registry
  }
}
