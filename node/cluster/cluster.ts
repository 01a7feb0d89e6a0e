import { createSecretKey, randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Agent } from 'undici'
import type { ClusterConfig } from '../../config/types.ts'
import type { NodeStats } from '../../protocol/messages.ts'
import { isWireUrlName, OTHER_DIGEST_NAME, wireKey } from '../../protocol/names.ts'
import type { BlobName } from '../../protocol/names.ts'
import { vouchKey } from '../../protocol/vouch.ts'
import type { Fetcher, SourceProvider } from '../fetch/fetcher.ts'
import type { SourceForOptions } from '../fetch/acquire-types.ts'
import type { BlobIdentity } from '../fetch/identity.ts'
import type { Source } from '../fetch/upstream-source.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import { Bans } from './bans.ts'
import { BlobAnswers } from './blob-answers.ts'
import { ControlService } from './control.ts'
import { DataServer } from './data-server.ts'
import { createDataCert, pinnedAgent, pinnedSockets } from './data-tls.ts'
import { DiscoveryDialer } from './discovery-dialer.ts'
import { IdentityClash } from './identity-clash.ts'
import { keyFileExposure, loadClusterKey, loadPeerKey } from './identity.ts'
import { createLibp2pNode } from './libp2p-node.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'
import { Membership } from './membership.ts'
import { RangeSockets } from '../upstream/range-sockets.ts'
import { PeerClient } from './peer-client.ts'
import { PieceLists } from './piece-lists.ts'
import { ContentRouter } from './routing.ts'
import { PauseWatch } from './pause-watch.ts'
import { answersPing } from './ping-check.ts'
import { startStep } from '../start-errors.ts'
import { StaticPeers } from './static-peers.ts'
import { SwarmSource } from './swarm-source.ts'

export interface ClusterComponents {
  store: BlobStore
  fetcher: Fetcher
  logger: Logger
}

export interface ClusterInit {
  config: ClusterConfig
  /** Where the peer identity and piece lists live (the cache dir). */
  dataDir: string
  version?: string
  /** How long a peer that failed the membership challenge is refused (default 60 s). */
  refusalMs?: number
  /** How long a connected peer may stay without becoming a member (default 15 s). */
  strangerGraceMs?: number
}

/** Everything the cluster is made of, once started. */
interface Parts {
  libp2p: ClusterLibp2p
  membership: Membership
  control: ControlService
  routing: ContentRouter
  staticPeers: StaticPeers
  discovery: DiscoveryDialer
  clash: IdentityClash
  data: DataServer
  peers: PeerClient
  peerPool: Agent
  peerSockets: RangeSockets
  /** A cluster key: members trust each other's URL names (see protocol/names.ts). */
  keyed: boolean
}

/**
 * The node's LAN cluster: libp2p host, membership, control protocol, content routing, the data port
 * and the swarm sources downloads use. Startable: start() and stop() are idempotent, and stop()
 * leaves no listener, timer or socket behind.
 */
export class Cluster implements SourceProvider {
  readonly bans = new Bans()
  readonly counters = { bytes_to_peers: 0, peer_bans: 0 }
  private readonly c: ClusterComponents
  private readonly init: ClusterInit
  private readonly log: Logger
  private readonly pieceLists: PieceLists
  private readonly ticketSecret = createSecretKey(randomBytes(32))
  /** Downloads' swarm sources, by the key members ask about (`sha256:<hex>` or a key name). */
  private readonly swarms = new Map<string, WeakRef<SwarmSource>>()
  private readonly startedAt = Date.now()
  /** Whether this process was just away (stopped, suspended): downloads wait for the members it lost. */
  private readonly pauses = new PauseWatch()
  private parts: Parts | null = null
  private starting: Promise<void> | null = null
  private stopWarming: () => void = () => {}

  constructor (components: ClusterComponents, init: ClusterInit) {
    this.c = components
    this.init = init
    this.log = components.logger.child({ component: 'cluster' })
    this.pieceLists = new PieceLists({ store: components.store, logger: this.log }, { dir: join(init.dataDir, 'cluster', 'pieces') })
  }

  get config (): ClusterConfig {
    return this.init.config
  }

  get running (): Parts | null {
    return this.parts
  }

  async start (): Promise<void> {
    this.starting ??= this.startOnce()
    await this.starting
  }

  private async startOnce (): Promise<void> {
    const cfg = this.init.config
    const key = await loadClusterKey(cfg.key_file)
    const exposure = await keyFileExposure(cfg.key_file)
    if (exposure !== null) this.log.warn(exposure)
    const privateKey = await loadPeerKey(join(this.init.dataDir, 'cluster', 'peer.key'))
    let membership: Membership | null = null
    const refused = (peer: { toString: () => string }): boolean => membership?.isRefused(peer.toString()) ?? false
    const gater: ConnectionGater = { denyDialPeer: refused, denyInboundEncryptedConnection: refused }
    // The DHT answers and asks members only: a node without the cluster key cannot read or write records.
    const dhtAdmission = async (peer: PeerId): Promise<boolean> => await membership?.ensure(peer) ?? false
    const libp2p = await createLibp2pNode({ privateKey, cluster: cfg, connectionGater: gater, version: this.init.version ?? '0', dhtAdmission })
    membership = new Membership({ libp2p, logger: this.log }, { cluster: cfg.name, key, rejectMs: this.init.refusalMs, strangerGraceMs: this.init.strangerGraceMs })
    const control = new ControlService({ libp2p, membership, logger: this.log }, { cluster: cfg.name })
    const routing = new ContentRouter({
      libp2p, membership, control, store: this.c.store, downloads: () => this.c.fetcher.activeDownloads().filter(d => this.c.fetcher.downloadsShareable(d.key)), bans: this.bans, logger: this.log
    })
    // Keyed clusters vouch for bytes of downloads in flight, so clients get them as they arrive;
    // open clusters hold them back until the whole blob verified.
    const vouch = key === null ? undefined : vouchKey(key)
    const tls = cfg.data_tls ? await createDataCert(libp2p.peerId.toString()) : undefined
    const answers = new BlobAnswers({ store: this.c.store, fetcher: this.c.fetcher, pieceLists: this.pieceLists, logger: this.log, swarm: k => this.swarms.get(k)?.deref() }, {
      keyed: key !== null, ticketSecret: this.ticketSecret
    })
    const data = new DataServer({ store: this.c.store, pieceLists: this.pieceLists, inFlight: k => answers.inFlightById(k), pool: this.c.fetcher.pool, logger: this.log }, {
      host: cfg.data_host, port: cfg.data_port, tls, ticketSecret: this.ticketSecret, vouchKey: vouch, onBytesServed: n => { this.counters.bytes_to_peers += n }
    })
    const pins = new Map<string, string>()
    const peerPool = pinnedAgent(pins, { connections: 32, keepAliveTimeout: 30_000 })
    // At most 32 connections to each member, as the pool above: a member serving many downloaders at once
    // (an office pulling one image) is not flooded past its data port's connection limit.
    const peerSockets = new RangeSockets({ party: 'Peer', connectTimeoutMs: 5_000, readTimeoutMs: 10_000, maxPerOrigin: 32, ...pinnedSockets(pins) })
    const peers = new PeerClient({ libp2p, control, dispatcher: peerPool, pins }, {
      vouchKey: vouch,
      onBytes: (_peer, n) => { this.c.store.traffic.receivedFromPeers(n) },
      sockets: { sockets: peerSockets, pool: this.c.fetcher.pool }
    })
    const staticPeers = new StaticPeers({ libp2p, logger: this.log }, { peers: cfg.peers })
    const m = membership
    const discovery = new DiscoveryDialer({ libp2p, logger: this.log }, { refused: peer => m.isRefused(peer) })
    membership.onRefusalOver = peer => { discovery.redial(peer) }
    await startStep(`cannot open the peer data port ${cfg.data_host}:${cfg.data_port}`, 'cluster.data_host, cluster.data_port', async () => { await data.start() })
    try {
      await membership.start()
      await control.start({
        have: async (k, peer) => {
          this.swarms.get(k)?.deref()?.heardFrom(peer)
          return await answers.have(k)
        },
        ticket: async (k, peer, ip) => await answers.ticket(k, peer, ip, data.port, tls?.sha256),
        stats: async () => this.localStats(),
        corrupt: async (k, peer) => await answers.recheck(k, peer)
      })
      await startStep(`cannot listen for cluster peers on ${cfg.listen.join(', ')}`, 'cluster.listen', async () => { await libp2p.start() })
    } catch (err) {
      // A half-started cluster leaves nothing listening.
      await control.stop().catch(() => {})
      await membership.stop().catch(() => {})
      await Promise.resolve(libp2p.stop()).catch(() => {})
      await data.stop()
      await peerPool.close()
      peerSockets.close()
      throw err
    }
    discovery.start()
    const clash = new IdentityClash({ libp2p, logger: this.log })
    clash.start()
    this.pauses.start()
    staticPeers.start()
    routing.start()
    this.stopWarming = this.c.store.onCommitted(digest => { this.pieceLists.warm(digest) })
    membership.onChange((peer, joined) => {
      if (!joined) peers.forget(peer)
      else discovery.explore(peer)
      for (const swarm of this.swarms.values()) {
        const s = swarm.deref()
        if (joined) s?.memberJoined(peer)
        else s?.memberLeft(peer)
      }
    })
    this.parts = { libp2p, membership, control, routing, staticPeers, discovery, clash, data, peers, peerPool, peerSockets, keyed: key !== null }
    this.log.info({ peerId: libp2p.peerId.toString(), addresses: libp2p.getMultiaddrs().map(String), dataPort: data.port, cluster: cfg.name, mode: key === null ? 'open' : 'keyed', mdns: cfg.mdns }, 'cluster started')
  }

  async stop (): Promise<void> {
    if (this.starting !== null) await this.starting.catch(() => {})
    const p = this.parts
    this.parts = null
    this.starting = null
    if (p === null) return
    this.pauses.stop()
    p.staticPeers.stop()
    p.discovery.stop()
    p.clash.stop()
    p.routing.stop()
    this.stopWarming()
    this.pieceLists.stop()
    await p.control.stop()
    await p.membership.stop()
    await p.libp2p.stop()
    await p.data.stop()
    await p.peerPool.close()
    p.peerSockets.close()
  }

  /**
   * The fetch engine's hook: downloads take peers as sources beside the upstream. Those of a blob with
   * a digest from upstream metadata always; in a keyed cluster also those named only by their URL,
   * when asked without a client's credentials (`shareable`).
   */
  shares (identity: BlobIdentity, shareable: boolean): boolean {
    const p = this.parts
    return p !== null && blobName(identity, p.keyed && shareable) !== null
  }

  sourceFor (identity: BlobIdentity, upstream: Source, options: SourceForOptions = {}): Source {
    const p = this.parts
    const name = p === null ? null : blobName(identity, p.keyed && options.shareable === true)
    if (p === null || name === null) return upstream
    // Asked with a client's credentials: bytes checked against the digest may come from members (what
    // they give is anyone's), but nothing of it is offered to them.
    if (options.shareable !== false) p.routing.provide(name)
    const source = new SwarmSource({
      peers: p.peers,
      bans: this.bans,
      lookup: async (n, o) => await p.routing.lookup(n, o),
      logger: this.log,
      self: p.libp2p.peerId.toString(),
      isMember: peer => p.membership.isMember(peer),
      alive: async (peer, heardRecently) => await pingable(p.libp2p, peer, heardRecently, this.log),
      returnedAt: () => this.pauses.returnedAt(),
      reportCorrupt: (peer, digest) => { p.control.corrupt(peer, `sha256:${digest}`).catch(() => {}) },
      onBan: () => { this.counters.peer_bans++ },
      saveList: (digest, list) => { this.pieceLists.put(digest, list) }
    }, { name, upstream, lookupMs: this.init.config.lookup_ms, started: options.started, etag: options.etag, lastModified: options.lastModified, upstreamDown: options.upstreamDown })
    // Downloads' sources, so "have" can say which ranges they are fetching from the upstream right now.
    const active = new Set(this.c.fetcher.activeDownloads().map(d => d.key))
    for (const key of this.swarms.keys()) if (!active.has(key)) this.swarms.delete(key)
    this.swarms.set(wireKey(name), new WeakRef(source))
    return source
  }

  /** This node's numbers, as every node answers a stats request. */
  localStats (): NodeStats {
    const s = this.c.store.stats()
    return {
      peer_id: this.parts?.libp2p.peerId.toString() ?? '',
      host: hostname(),
      cluster: this.init.config.name,
      uptime_s: Math.floor((Date.now() - this.startedAt) / 1000),
      cache: { size_bytes: s.total_size_bytes, blobs: s.file_count, max_bytes: this.c.store.maxBytes },
      hits: s.hits,
      misses: s.misses,
      bytes_from_cache: s.bytes_from_cache,
      bytes_from_peers: s.bytes_from_peers,
      bytes_from_upstream: s.bytes_from_upstream,
      bytes_to_peers: this.counters.bytes_to_peers,
      active_downloads: this.c.fetcher.activeDownloads().length,
      peers: this.parts?.membership.memberIds().length ?? 0,
      peer_bans: this.counters.peer_bans
    }
  }
}

/** What members are asked about for a download: its digest, or its URL key when `byUrl` allows (null: nothing). */
function blobName (identity: BlobIdentity, byUrl: boolean): BlobName | null {
  if (identity.sha256 !== null) return identity.sha256
  if (identity.expected !== null && OTHER_DIGEST_NAME.test(identity.key)) return identity.key
  if (byUrl && isWireUrlName(identity.key)) return identity.key
  return null
}

async function pingable (libp2p: ClusterLibp2p, peer: string, heardRecently: () => boolean, log: Logger): Promise<boolean> {
  const id = peerIdFromString(peer)
  const r = await answersPing(async signal => await libp2p.services.ping.ping(id, { signal }), { heardRecently })
  if (!r.alive) log.debug({ peer, ms: Math.round(r.ms), err: r.err }, 'ping not answered')
  else if (r.heard === true) log.debug({ peer, ms: Math.round(r.ms) }, 'ping timed out, but the peer was heard from meanwhile: slow, not gone')
  return r.alive
}
