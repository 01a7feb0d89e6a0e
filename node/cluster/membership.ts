import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { WireError } from '../../protocol/errors.ts'
import { membershipProtocol, PROTOCOL_VERSION } from '../../protocol/ids.ts'
import { checkProof, membershipSecret, newNonce, proofFor } from '../../protocol/membership.ts'
import type { Transcript } from '../../protocol/membership.ts'
import { memberMessage } from '../../protocol/messages.ts'
import type { MemberMessage } from '../../protocol/messages.ts'
import type { Logger } from '../log.ts'
import { lruCache } from '../lru.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'
import { MessageStream, withinStreamDeadline } from './streams.ts'

/** The member protocol of any cluster name and version (see protocol/ids.ts). */
const MEMBER_PROTOCOL = /^\/aimirror\/(.+)\/member\/([^/]+)$/
/** How long a member that left is listed as unreachable, and how many are, at most. */
const DEPARTED_LISTED_MS = 60 * 60_000
const MAX_DEPARTED = 256
/** Strangers and refused peers remembered as reported, at most (the least recent are forgotten). */
const MAX_STRANGERS = 1024
/** A refused peer is dialled again (mDNS, the DHT, its own config) every minute or so: said at warn once an hour. */
const REFUSAL_SAID_MS = 3_600_000
/**
 * A connected peer that is no member this long after it connected is hung up on: bare libp2p peers (no
 * member protocol, so never challenged) held 198 of the 200 connections a node takes, and members that
 * joined then were refused.
 */
const STRANGER_GRACE_MS = 15_000
/**
 * With more connections than this a stranger gets 2 s: an attacker re-dialling from several addresses
 * kept 196 of the 200 slots taken at 15 s each, and new members took 10–16 s to join.
 */
const BUSY_CONNECTIONS = 100
const BUSY_GRACE_MS = 2_000

export interface MembershipComponents {
  libp2p: ClusterLibp2p
  logger: Logger
}

export interface MembershipInit {
  cluster: string
  /** Cluster key; null = open cluster. */
  key: Uint8Array | null
  /** How long a peer that failed the challenge is refused. */
  rejectMs?: number
  /** See STRANGER_GRACE_MS. */
  strangerGraceMs?: number
}

/**
 * Who is in the cluster. Membership is proven once per connection by a mutual HMAC challenge over the
 * cluster key (protocol/membership.ts) on the member protocol, and forgotten when the peer disconnects.
 * Every other aimirror protocol (control, DHT) serves members only. A peer that fails is hung up on and
 * refused for a while (the connection gater asks `isRefused`).
 */
export class Membership {
  private readonly libp2p: ClusterLibp2p
  private readonly log: Logger
  private readonly cluster: string
  private readonly mode: 'open' | 'keyed'
  private readonly secret: Uint8Array
  private readonly rejectMs: number
  private readonly strangerGraceMs: number
  private readonly protocol: string
  private readonly members = new Map<string, { since: number, addr?: string }>()
  private readonly refused = lruCache<string, number>(MAX_STRANGERS)
  /** When each refused peer is dialed again (see onRefusalOver). */
  private readonly retries = new Map<string, NodeJS.Timeout>()
  /**
   * Dials a peer again when its refusal ended: nothing else would (libp2p reports a peer it already
   * knows as discovered only once; a peer that changed its key, or this node, waited for minutes).
   */
  onRefusalOver: ((peer: PeerId) => void) | null = null
  /** Refused peers said at warn within the last REFUSAL_SAID_MS (see refuse). */
  private readonly refusalsSaid = lruCache<string, true>(MAX_STRANGERS, { ttl: REFUSAL_SAID_MS })
  private readonly pending = new Map<string, Promise<boolean>>()
  private readonly listeners = new Set<(peer: string, joined: boolean) => void>()
  /** Members that left (disconnected), and when: views list them as unreachable for a while. */
  private readonly departed = lruCache<string, { at: number, addr?: string }>(MAX_DEPARTED, { ttl: DEPARTED_LISTED_MS })
  /** aimirror nodes of other clusters or versions already reported (see noteStranger). */
  private readonly strangers = lruCache<string, true>(MAX_STRANGERS)
  private started = false

  constructor (components: MembershipComponents, init: MembershipInit) {
    this.libp2p = components.libp2p
    this.log = components.logger
    this.cluster = init.cluster
    this.mode = init.key === null ? 'open' : 'keyed'
    this.secret = membershipSecret(init.cluster, init.key)
    this.rejectMs = init.rejectMs ?? 60_000
    this.strangerGraceMs = init.strangerGraceMs ?? STRANGER_GRACE_MS
    this.protocol = membershipProtocol(init.cluster)
    this.onIdentify = this.onIdentify.bind(this)
    this.onDisconnect = this.onDisconnect.bind(this)
    this.onConnect = this.onConnect.bind(this)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.libp2p.handle(this.protocol, (stream, connection) => this.respond(stream, connection), {
      maxInboundStreams: 4, maxOutboundStreams: 4
    })
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.addEventListener('peer:connect', this.onConnect)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    this.libp2p.removeEventListener('peer:connect', this.onConnect)
    await this.libp2p.unhandle(this.protocol)
    this.members.clear()
    this.listeners.clear()
    for (const t of this.retries.values()) clearTimeout(t)
    this.retries.clear()
  }

  /** See STRANGER_GRACE_MS. */
  private onConnect (evt: CustomEvent<PeerId>): void {
    const peer = evt.detail
    const busy = this.libp2p.getConnections().length > BUSY_CONNECTIONS
    setTimeout(() => {
      if (!this.started || this.members.has(peer.toString())) return
      this.libp2p.hangUp(peer).catch(() => {})
    }, busy ? Math.min(BUSY_GRACE_MS, this.strangerGraceMs) : this.strangerGraceMs).unref()
  }

  isMember (peer: PeerId | string): boolean {
    return this.members.has(peer.toString())
  }

  /** For the connection gater: a peer that failed the challenge recently. */
  isRefused (peer: PeerId | string): boolean {
    const until = this.refused.get(peer.toString())
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.refused.delete(peer.toString())
    return false
  }

  memberIds (): string[] {
    return [...this.members.keys()]
  }

  /**
   * Members that left within DEPARTED_LISTED_MS and have not come back, with when (ms): a node that
   * crashed or was switched off shows as unreachable in the cluster's views, not as never there.
   */
  departedIds (): Array<{ peer: string, at: number, addr?: string }> {
    return [...this.departed.entries()].map(([peer, left]) => ({ peer, ...left }))
  }

  onChange (listener: (peer: string, joined: boolean) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** True once `peer` has proven membership (running the challenge if needed). */
  async ensure (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const id = peer.toString()
    if (this.members.has(id)) return true
    if (!this.started || this.isRefused(id)) return false
    let p = this.pending.get(id)
    if (p === undefined) {
      p = this.challenge(peer, options.signal).finally(() => this.pending.delete(id))
      this.pending.set(id, p)
    }
    return await p
  }

  private onIdentify (evt: CustomEvent<{ peerId: PeerId, protocols: string[] }>): void {
    if (evt.detail.protocols.includes(this.protocol)) {
      this.ensure(evt.detail.peerId).catch(() => {})
      return
    }
    this.noteStranger(evt.detail.peerId, evt.detail.protocols)
  }

  /**
   * An aimirror node of another cluster name (a typo in one node's config looks exactly like this) or of
   * another protocol version (a node not upgraded yet) is no member: said once per peer, with what it
   * speaks, since nothing else would show why it never joins.
   */
  private noteStranger (peer: PeerId, protocols: readonly string[]): void {
    const theirs = protocols.map(p => MEMBER_PROTOCOL.exec(p)).find(m => m !== null)
    if (theirs == null || this.strangers.has(peer.toString())) return
    this.strangers.set(peer.toString(), true)
    const [, cluster, version] = theirs
    const why = cluster === this.cluster ? `it speaks version ${String(version)} of the member protocol, this node ${PROTOCOL_VERSION}` : `it is in cluster "${String(cluster).slice(0, 64)}", this node in "${this.cluster}" (cluster.name)`
    this.log.warn({ peer: peer.toString(), addr: this.addressOf(peer), why }, 'aimirror node seen that is not in this cluster')
  }

  private addressOf (peer: PeerId): string | undefined {
    return this.libp2p.getConnections(peer)[0]?.remoteAddr.toString()
  }

  private onDisconnect (evt: CustomEvent<PeerId>): void {
    const id = evt.detail.toString()
    const member = this.members.get(id)
    if (member === undefined) return
    this.members.delete(id)
    this.departed.set(id, { at: Date.now(), addr: member.addr })
    this.log.info({ peer: id }, 'cluster peer left')
    this.emit(id, false)
  }

  private admit (peer: PeerId): void {
    const id = peer.toString()
    if (this.members.has(id)) return
    this.members.set(id, { since: Date.now(), addr: this.addressOf(peer) })
    this.departed.delete(id)
    this.log.info({ peer: id }, 'cluster peer joined')
    this.emit(id, true)
  }

  /** `addr`: where the refused connection came from (it may be closed by the time this is said). */
  private refuse (peer: PeerId, why: string, addr?: string): void {
    const id = peer.toString()
    this.refused.set(id, Date.now() + this.rejectMs)
    this.retryAfterRefusal(peer)
    const news = !this.refusalsSaid.has(id)
    if (news) this.refusalsSaid.set(id, true)
    this.log[news ? 'warn' : 'debug']({ peer: id, addr: addr ?? this.addressOf(peer), why }, 'peer refused: not a member of this cluster')
    // Hang up a moment later: the other side may be reading our error on this connection (or running
    // its own challenge at the same time), and it must get to refuse us too.
    setTimeout(() => { this.libp2p.hangUp(peer).catch(() => {}) }, 250).unref()
  }

  private retryAfterRefusal (peer: PeerId): void {
    const id = peer.toString()
    clearTimeout(this.retries.get(id))
    if (this.retries.size >= MAX_STRANGERS) return
    // A little after the refusal ends (the other side may have refused this node at the same moment).
    const t = setTimeout(() => {
      this.retries.delete(id)
      if (this.started && !this.isRefused(id) && !this.members.has(id)) this.onRefusalOver?.(peer)
    }, this.rejectMs + 1000 + Math.floor(Math.random() * 2000))
    t.unref()
    this.retries.set(id, t)
  }

  private emit (id: string, joined: boolean): void {
    for (const l of this.listeners) l(id, joined)
  }

  /** Initiator side: hello → challenge (check the responder's proof) → our proof → welcome. */
  private async challenge (peer: PeerId, parent?: AbortSignal): Promise<boolean> {
    return await withinStreamDeadline(async signal => await this.challengeWithin(peer, signal), parent)
  }

  private async challengeWithin (peer: PeerId, signal: AbortSignal): Promise<boolean> {
    let stream: Stream
    try {
      stream = await this.libp2p.dialProtocol(peer, this.protocol, { signal })
    } catch (err) {
      this.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'membership: cannot open a stream')
      return false
    }
    const ms = new MessageStream(stream)
    const me = this.libp2p.peerId.toString()
    try {
      const initiatorNonce = newNonce()
      await ms.write({ t: 'hello', cluster: this.cluster, mode: this.mode, nonce: Buffer.from(initiatorNonce).toString('base64') }, { signal })
      const challenge = await ms.read(memberMessage, { signal })
      if (challenge.t === 'error') throw new WireError(challenge.code, challenge.message)
      if (challenge.t !== 'challenge') throw new WireError('BAD_MESSAGE', 'expected a challenge')
      const t: Transcript = { cluster: this.cluster, initiatorNonce, responderNonce: Buffer.from(challenge.nonce, 'base64'), initiator: me, responder: peer.toString() }
      if (t.responderNonce.length !== 32 || !checkProof(this.secret, 'responder', t, Buffer.from(challenge.proof, 'base64'))) {
        await ms.write({ t: 'error', code: 'NOT_MEMBER', message: 'wrong proof' }, { signal }).catch(() => {})
        await ms.close({ signal })
        this.refuse(peer, 'its proof does not match this node\'s cluster key')
        return false
      }
      await ms.write({ t: 'proof', proof: Buffer.from(proofFor(this.secret, 'initiator', t)).toString('base64') }, { signal })
      const welcome = await ms.read(memberMessage, { signal })
      if (welcome.t === 'error') throw new WireError(welcome.code, welcome.message)
      if (welcome.t !== 'welcome') throw new WireError('BAD_MESSAGE', 'expected welcome')
      await ms.close({ signal })
      this.admit(peer)
      return true
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      if (err instanceof WireError && err.code === 'WRONG_CLUSTER') this.refuse(peer, `${err.message.slice(0, 100)}, this node in the ${this.mode} cluster "${this.cluster}"`)
      else if (err instanceof WireError && err.code === 'NOT_MEMBER') this.refuse(peer, 'it rejected our proof: its cluster key differs')
      else this.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'membership challenge failed')
      return false
    }
  }

  /** Responder side. */
  private async respond (stream: Stream, connection: Connection): Promise<void> {
    await withinStreamDeadline(async signal => { await this.respondWithin(stream, connection, signal) })
  }

  private async respondWithin (stream: Stream, connection: Connection, signal: AbortSignal): Promise<void> {
    const ms = new MessageStream(stream)
    const peer = connection.remotePeer
    const from = connection.remoteAddr.toString()
    try {
      const hello: MemberMessage = await ms.read(memberMessage, { signal })
      if (hello.t !== 'hello') throw new WireError('BAD_MESSAGE', 'expected hello')
      if (hello.cluster !== this.cluster || hello.mode !== this.mode) {
        await ms.write({ t: 'error', code: 'WRONG_CLUSTER', message: `it is in the ${this.mode} cluster "${this.cluster}"` }, { signal })
        await ms.close({ signal })
        this.refuse(peer, `it is in the ${hello.mode} cluster "${hello.cluster.slice(0, 64)}", this node in the ${this.mode} cluster "${this.cluster}"`, from)
        return
      }
      const t: Transcript = {
        cluster: this.cluster,
        initiatorNonce: Buffer.from(hello.nonce, 'base64'),
        responderNonce: newNonce(),
        initiator: peer.toString(),
        responder: this.libp2p.peerId.toString()
      }
      if (t.initiatorNonce.length !== 32) throw new WireError('BAD_MESSAGE', 'bad nonce')
      await ms.write({ t: 'challenge', nonce: Buffer.from(t.responderNonce).toString('base64'), proof: Buffer.from(proofFor(this.secret, 'responder', t)).toString('base64') }, { signal })
      const proof = await ms.read(memberMessage, { signal })
      if (proof.t === 'error') {
        // The initiator could not verify our proof: it holds another key (or none), so it is no member
        // either. Both sides may challenge at once; whichever fails first must still refuse the other.
        await ms.close({ signal })
        this.refuse(peer, 'it rejected our proof: its cluster key differs', from)
        return
      }
      if (proof.t !== 'proof') throw new WireError('BAD_MESSAGE', 'expected a proof')
      if (!checkProof(this.secret, 'initiator', t, Buffer.from(proof.proof, 'base64'))) {
        await ms.write({ t: 'error', code: 'NOT_MEMBER', message: 'wrong proof' }, { signal })
        await ms.close({ signal })
        this.refuse(peer, 'its proof does not match this node\'s cluster key', from)
        return
      }
      this.admit(peer)
      await ms.write({ t: 'welcome' }, { signal })
      await ms.close({ signal })
    } catch (err) {
      // Malformed, too large or too slow: reset the stream, never more.
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}
