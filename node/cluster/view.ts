import type { NodeStats } from '../../protocol/messages.ts'
import type { Cluster } from './cluster.ts'

export interface NodeView extends Partial<NodeStats> {
  readonly peer_id: string
  readonly self: boolean
  readonly reachable: boolean
  readonly error?: string
  /** A member that left (its connection closed) within the last hour: when (ISO time), and where it was. */
  readonly left_at?: string
  readonly address?: string
}

export interface ClusterTotals {
  nodes: number
  reachable: number
  cache_size_bytes: number
  blobs: number
  hits: number
  misses: number
  hit_rate: number
  bytes_from_cache: number
  bytes_from_peers: number
  bytes_from_upstream: number
  bytes_to_peers: number
  active_downloads: number
  /** Bans for bad bytes, summed over the nodes that banned. */
  peer_bans: number
  /** Bytes clients got without the upstream carrying them (from a cache or from a peer). */
  bytes_saved_upstream: number
}

export interface ClusterStatsView {
  enabled: boolean
  cluster: string
  mode: 'open' | 'keyed'
  nodes: NodeView[]
  totals: ClusterTotals
}

export interface PeerView {
  peer_id: string
  member: boolean
  banned: boolean
  addresses: string[]
  /** Connection open since (ISO time). */
  since: string | null
}

export interface PeersView {
  enabled: boolean
  self: { peer_id: string, addresses: string[], data_port: number } | null
  peers: PeerView[]
}

/** Adds up the reachable nodes' numbers. */
export function clusterTotals (nodes: readonly NodeView[]): ClusterTotals {
  const t: ClusterTotals = {
    nodes: nodes.length, reachable: 0, cache_size_bytes: 0, blobs: 0, hits: 0, misses: 0, hit_rate: 0,
    bytes_from_cache: 0, bytes_from_peers: 0, bytes_from_upstream: 0, bytes_to_peers: 0, active_downloads: 0, peer_bans: 0, bytes_saved_upstream: 0
  }
  for (const n of nodes) {
    if (!n.reachable) continue
    t.reachable++
    t.cache_size_bytes += n.cache?.size_bytes ?? 0
    t.blobs += n.cache?.blobs ?? 0
    t.hits += n.hits ?? 0
    t.misses += n.misses ?? 0
    t.bytes_from_cache += n.bytes_from_cache ?? 0
    t.bytes_from_peers += n.bytes_from_peers ?? 0
    t.bytes_from_upstream += n.bytes_from_upstream ?? 0
    t.bytes_to_peers += n.bytes_to_peers ?? 0
    t.active_downloads += n.active_downloads ?? 0
    t.peer_bans += n.peer_bans ?? 0
  }
  t.bytes_saved_upstream = t.bytes_from_cache + t.bytes_from_peers
  t.hit_rate = t.hits + t.misses === 0 ? 0 : Math.round(t.hits / (t.hits + t.misses) * 1000) / 1000
  return t
}

/**
 * Every member's stats (asked in parallel, `timeoutMs` each), this node first; then the members that left
 * in the last hour, unreachable.
 */
export async function clusterStats (cluster: Cluster, options: { timeoutMs?: number } = {}): Promise<ClusterStatsView> {
  const p = cluster.running
  const self: NodeView = { ...cluster.localStats(), self: true, reachable: true }
  const nodes: NodeView[] = [self]
  if (p !== null) {
    const others = await Promise.all(p.membership.memberIds().map(async (peer): Promise<NodeView> => {
      try {
        const s = await p.control.stats(peer, { signal: AbortSignal.timeout(options.timeoutMs ?? 2000) })
        return { ...s, peer_id: peer, self: false, reachable: true }
      } catch (err) {
        return { peer_id: peer, self: false, reachable: false, error: errorText(err) }
      }
    }))
    nodes.push(...others.sort((a, b) => a.peer_id.localeCompare(b.peer_id)))
    for (const { peer, at, addr } of p.membership.departedIds().sort((a, b) => a.peer.localeCompare(b.peer))) {
      nodes.push({ peer_id: peer, self: false, reachable: false, error: 'left', left_at: new Date(at).toISOString(), ...(addr === undefined ? {} : { address: addr }) })
    }
  }
  return { enabled: true, cluster: cluster.config.name, mode: cluster.config.key_file === null ? 'open' : 'keyed', nodes, totals: clusterTotals(nodes) }
}

/** Connected libp2p peers, members or not, and banned ones. */
export function peersView (cluster: Cluster): PeersView {
  const p = cluster.running
  if (p === null) return { enabled: true, self: null, peers: [] }
  const byPeer = new Map<string, PeerView>()
  for (const conn of p.libp2p.getConnections()) {
    const id = conn.remotePeer.toString()
    const v = byPeer.get(id) ?? { peer_id: id, member: p.membership.isMember(id), banned: cluster.bans.isBanned(id), addresses: [], since: null }
    v.addresses.push(conn.remoteAddr.toString())
    const opened = new Date(conn.timeline.open).toISOString()
    if (v.since === null || opened < v.since) v.since = opened
    byPeer.set(id, v)
  }
  for (const { peer } of cluster.bans.list()) {
    if (!byPeer.has(peer)) byPeer.set(peer, { peer_id: peer, member: false, banned: true, addresses: [], since: null })
  }
  return {
    enabled: true,
    self: { peer_id: p.libp2p.peerId.toString(), addresses: p.libp2p.getMultiaddrs().map(String), data_port: p.data.port },
    peers: [...byPeer.values()].sort((a, b) => Number(b.member) - Number(a.member) || a.peer_id.localeCompare(b.peer_id))
  }
}

/** A member's failure as a short word: its string code (a timeout's DOMException code is a number), else its message. */
function errorText (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') return code
  const name = (err as { name?: unknown } | null)?.name
  if (name === 'TimeoutError') return 'timeout'
  return err instanceof Error ? err.message : String(err)
}
