import type { PeerInfo } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'

/**
 * libp2p only reports the peers mDNS (or the DHT) discovers; this dials them, once at a time per peer,
 * unless already connected or refused. Membership is then proven on the new connection.
 */
export class DiscoveryDialer {
  private readonly libp2p: ClusterLibp2p
  private readonly log: Logger
  private readonly refused: (peer: string) => boolean
  private readonly dialing = new Set<string>()
  private readonly abort = new AbortController()
  private started = false

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
    this.abort.abort()
  }

  private onDiscovery (evt: CustomEvent<PeerInfo>): void {
    const { id, multiaddrs } = evt.detail
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
