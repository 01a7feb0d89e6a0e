import { randomBytes } from 'node:crypto'
import type { Connection, IdentifyResult } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import { lruCache } from '../lru.ts'
import { remoteIp } from './control.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'

/** Said at warn once an hour per peer id. */
const SAID_MS = 60 * 60_000

/** This process's mark, sent in its libp2p user agent: two nodes with one peer id still differ in it. */
const INSTANCE = randomBytes(6).toString('hex')

/** The user agent identify sends on every connection. */
export function userAgent (version: string, instance = INSTANCE): string {
  return `aimirror/${version} instance/${instance}`
}

function instanceOf (agent: string | undefined): string | null {
  return /\binstance\/([0-9a-f]{1,32})\b/.exec(agent ?? '')?.[1] ?? null
}

/**
 * Two nodes started from one identity (`cache/cluster/peer.key` on a cloned disk or a copied volume) are
 * one peer to everyone else: its tickets and reads go over whichever connection libp2p picks, so sharing
 * with both quietly stops. Identify runs on every connection; one peer id answering on two open
 * connections with two instance marks is two processes, and is said with both addresses.
 */
export class IdentityClash {
  private readonly libp2p: ClusterLibp2p
  private readonly log: Logger
  private readonly seen = lruCache<string, { instance: string, connection: Connection }>(1024)
  private readonly said = lruCache<string, true>(256, { ttl: SAID_MS })

  constructor (components: { libp2p: ClusterLibp2p, logger: Logger }) {
    this.libp2p = components.libp2p
    this.log = components.logger
    this.onIdentify = this.onIdentify.bind(this)
  }

  start (): void {
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
  }

  stop (): void {
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
  }

  private onIdentify (evt: CustomEvent<IdentifyResult>): void {
    const { peerId, agentVersion, connection } = evt.detail
    const instance = instanceOf(agentVersion)
    if (instance === null) return
    const id = peerId.toString()
    const before = this.seen.get(id)
    this.seen.set(id, { instance, connection })
    if (before === undefined || before.instance === instance || before.connection.status !== 'open' || this.said.has(id)) return
    this.said.set(id, true)
    this.log.warn({ peer: id, addresses: [remoteIp(before.connection), remoteIp(connection)] }, 'one peer id is used by two running nodes: a copied cache/cluster/peer.key (a cloned disk or volume); delete that file on one of them and restart it')
  }
}
