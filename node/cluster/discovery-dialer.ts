import type { PeerId, PeerInfo } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'

/** How long one look for the members a new member knows may take. */
const EXPLORE_MS = 5000
/** A new member is asked again this often, and this many times, until it answered a look. */
const EXPLORE_RETRY_MS = 300
const EXPLORE_TRIES = 5

/**
 * libp2p only reports the peers mDNS (or the DHT) discovers; this dials them, once at a time per peer,
 * unless already connected or refused. Membership is then proven on the new connection.
 *
 * With static peers only (no multicast), a node knows at first just the peers in its config: nodes
 * chained by their configs found each other only through the DHT's own look at itself, which runs a
 * second after start and then every 5 minutes. `explore` runs that look when a member joins: the new
 * member answers with the members it knows, and they are dialed. It enters the DHT's routing table a
 * moment after its join, and a look that did not reach it yet is made again.
 */
export class DiscoveryDialer {
  private readonly libp2p: ClusterLibp2p
  private readonly log: Logger
  private readonly refused: (peer: string) => boolean
  private readonly dialing = new Set<string>()
  private readonly abort = new AbortController()
  private started = false
  /** New members to hear from, with the looks made so far that did not reach them. */
  private readonly toHear = new Map<string, number>()
  private exploreTimer: NodeJS.Timeout | null = null
  private exploring = false

  constructor (components: { libp2p: ClusterLibp2p, logger: Logger }, init: { refused: (peer: string) => boolean }) {
    this.libp2p = components.libp2p
    this.log = components.logger
    this.refused = init.refused
    this.onDiscovery = this.onDiscovery.bind(this)
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.libp2p.addEventListener('peer:discovery', this.onDiscovery)
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    this.libp2p.removeEventListener('peer:discovery', this.onDiscovery)
    if (this.exploreTimer !== null) clearTimeout(this.exploreTimer)
    this.exploreTimer = null
    this.toHear.clear()
    this.abort.abort()
  }

  /** Asks the DHT for the members `member`, which has just joined, knows (see the class comment). */
  explore (member: string): void {
    if (!this.started) return
    if (!this.toHear.has(member)) this.toHear.set(member, 0)
    this.scheduleLook(0)
  }

  private scheduleLook (ms: number): void {
    if (this.exploreTimer !== null || this.exploring || this.toHear.size === 0) return
    this.exploreTimer = setTimeout(() => {
      this.exploreTimer = null
      this.exploring = true
      this.look()
        .catch((err: unknown) => { this.log.debug({ err: (err as Error).message }, 'looking for members through the DHT failed') })
        .finally(() => {
          this.exploring = false
          this.scheduleLook(EXPLORE_RETRY_MS)
        })
    }, ms)
    this.exploreTimer.unref()
  }

  private async look (): Promise<void> {
    const asked = [...this.toHear.keys()]
    const heard = new Set<string>()
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(EXPLORE_MS)])
    try {
      // The peers the answers name are reported as discovered by the DHT (onDiscovery dials them).
      for await (const event of this.libp2p.services.dht.getClosestPeers(this.libp2p.peerId.toMultihash().bytes, { signal })) {
        if (event.name === 'PEER_RESPONSE') heard.add(event.from.toString())
      }
    } finally {
      for (const peer of asked) {
        const tries = (this.toHear.get(peer) ?? 0) + 1
        if (heard.has(peer) || tries >= EXPLORE_TRIES) this.toHear.delete(peer)
        else this.toHear.set(peer, tries)
      }
    }
  }

  /** Dials a peer known from before (its addresses are in the peer store), unless connected or refused. */
  redial (id: PeerId): void {
    if (!this.started) return
    this.dialPeer(id, [])
  }

  private onDiscovery (evt: CustomEvent<PeerInfo>): void {
    const { id, multiaddrs } = evt.detail
    this.dialPeer(id, multiaddrs)
  }

  private dialPeer (id: PeerId, multiaddrs: PeerInfo['multiaddrs']): void {
    const key = id.toString()
    if (id.equals(this.libp2p.peerId) || this.dialing.has(key) || this.refused(key)) return
    if (this.libp2p.getConnections(id).length > 0) return
    this.dialing.add(key)
    const target = multiaddrs.length > 0 ? multiaddrs : id
    this.libp2p.dial(target, { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(10_000)]) })
      .catch((err: unknown) => { this.log.debug({ peer: key, err: (err as Error).message }, 'discovered peer not reachable') })
      .finally(() => this.dialing.delete(key))
  }
}
