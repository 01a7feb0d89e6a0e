import type { Connection } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import { lruCache } from '../lru.ts'
import { remoteIp } from './control.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'

/** Said at warn once an hour per peer id. */
const SAID_MS = 60 * 60_000

/**
 * Two nodes started from one identity (`cache/cluster/peer.key` on a cloned disk or a copied volume) are
 * one peer to everyone else, reached at two addresses: its tickets and reads go over whichever connection
 * libp2p picks, so sharing with both quietly stops. Nothing else tells; one peer connected from two
 * addresses at once is said, with both (a host with two LAN addresses may show the same, rarely).
 */
export class IdentityClash {
  private readonly libp2p: ClusterLibp2p
  private readonly log: Logger
  private readonly said = lruCache<string, true>(256, { ttl: SAID_MS })

  constructor (components: { libp2p: ClusterLibp2p, logger: Logger }) {
    this.libp2p = components.libp2p
    this.log = components.logger
    this.onOpen = this.onOpen.bind(this)
  }

  start (): void {
    this.libp2p.addEventListener('connection:open', this.onOpen)
  }

  stop (): void {
    this.libp2p.removeEventListener('connection:open', this.onOpen)
  }

  private onOpen (evt: CustomEvent<Connection>): void {
    const peer = evt.detail.remotePeer
    const id = peer.toString()
    if (this.said.has(id)) return
    const addresses = new Set(this.libp2p.getConnections(peer).filter(c => c.status === 'open').map(remoteIp).filter(ip => ip !== ''))
    if (addresses.size < 2) return
    this.said.set(id, true)
    this.log.warn({ peer: id, addresses: [...addresses] }, 'one peer id is connected from two addresses at once: two nodes may share one identity (a copied cache/cluster/peer.key); delete that file on one of them and restart it')
  }
}
