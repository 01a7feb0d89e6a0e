import { isIP } from 'node:net'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../log.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'

/** `host:port` → `/ip4|ip6|dns/host/tcp/port`; multiaddrs as they are. */
export function staticPeerAddress (entry: string): Multiaddr {
  if (entry.startsWith('/')) return multiaddr(entry)
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(entry)
  if (m === null) throw new TypeError(`not a peer address: ${entry}`)
  const host = m[1] ?? m[2] as string
  const kind = isIP(host) === 4 ? 'ip4' : isIP(host) === 6 ? 'ip6' : 'dns'
  return multiaddr(`/${kind}/${host}/tcp/${m[3] as string}`)
}

/** Failed dials (about 7 s of tries, with the backoff) after which a static peer is reported at warn. */
const FAILURES_WARNED = 3

interface Target {
  readonly addr: Multiaddr
  peer: PeerId | null
  failures: number
  nextAt: number
}

/**
 * Keeps connections to the configured static peers (for LANs where multicast is blocked): dials each
 * at start and again whenever it is not connected, backing off on failure (1 s doubling to 60 s).
 */
export class StaticPeers {
  private readonly libp2p: ClusterLibp2p
  private readonly log: Logger
  private readonly targets: Target[]
  private timer: NodeJS.Timeout | null = null
  private readonly abort = new AbortController()
  private dialing = false

  constructor (components: { libp2p: ClusterLibp2p, logger: Logger }, init: { peers: readonly string[] }) {
    this.libp2p = components.libp2p
    this.log = components.logger
    this.targets = init.peers.map(p => ({ addr: staticPeerAddress(p), peer: null, failures: 0, nextAt: 0 }))
  }

  start (): void {
    if (this.timer !== null || this.targets.length === 0) return
    this.timer = setInterval(() => { this.tick().catch(() => {}) }, 1000)
    this.timer.unref()
    this.tick().catch(() => {})
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.abort.abort()
  }

  private async tick (): Promise<void> {
    if (this.dialing) return
    this.dialing = true
    try {
      const now = Date.now()
      await Promise.all(this.targets.map(async t => {
        if (t.peer !== null && this.libp2p.getConnections(t.peer).length > 0) return
        if (t.nextAt > now || this.abort.signal.aborted) return
        try {
          const conn = await this.libp2p.dial(t.addr, { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(5000)]) })
          t.peer = conn.remotePeer
          t.failures = 0
        } catch (err) {
          t.failures++
          t.nextAt = Date.now() + Math.min(60_000, 1000 * 2 ** (t.failures - 1))
          // Said once at warn (after a few seconds of tries): with mDNS off, static peers are all the
          // discovery there is, and a wrong address or peer id would otherwise go unnoticed.
          if (t.failures === FAILURES_WARNED) this.log.warn({ addr: t.addr.toString(), err: (err as Error).message }, 'static peer not reachable (cluster.peers); still trying')
          else if (t.failures === 1 || t.failures % 10 === 0) this.log.debug({ addr: t.addr.toString(), err: (err as Error).message }, 'static peer not reachable')
        }
      }))
    } finally {
      this.dialing = false
    }
  }
}
