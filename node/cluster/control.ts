import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { WireError } from '../../protocol/errors.ts'
import { controlProtocol, LIMITS } from '../../protocol/ids.ts'
import { controlAnswer, controlRequest, expectAnswer } from '../../protocol/messages.ts'
import type { ControlAnswer, ControlRequest, HaveAnswer, NodeStats, TicketAnswer } from '../../protocol/messages.ts'
import type { Logger } from '../log.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'
import type { Membership } from './membership.ts'
import { MessageStream, withinStreamDeadline } from './streams.ts'

/** What the control protocol asks of the rest of the node. */
export interface ControlHandlers {
  have: (key: string, peer: string) => Promise<HaveAnswer>
  /** `ip`: the address the member's connection came from (its data requests must come from it too). */
  ticket: (key: string, peer: string, ip: string) => Promise<TicketAnswer>
  stats: () => Promise<NodeStats>
  /** A member says this node's bytes of the blob failed its check; answered with what is held after. */
  corrupt: (key: string, peer: string) => Promise<HaveAnswer>
}

export interface ControlComponents {
  libp2p: ClusterLibp2p
  membership: Membership
  logger: Logger
}

/** The IP a connection's remote address names (`/ip4/10.0.0.2/tcp/…` → 10.0.0.2), or ''. */
export function remoteIp (connection: Connection): string {
  return connection.remoteAddr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value ?? ''
}

/**
 * The control protocol: one request and one answer per stream, members only, a deadline on every
 * stream and a cap on inbound streams per connection. A malformed request resets the stream; a
 * handler failure is answered with INTERNAL; nothing a peer sends can throw past this class.
 */
export class ControlService {
  private readonly libp2p: ClusterLibp2p
  private readonly membership: Membership
  private readonly log: Logger
  private readonly protocol: string
  private handlers: ControlHandlers | null = null

  constructor (components: ControlComponents, init: { cluster: string }) {
    this.libp2p = components.libp2p
    this.membership = components.membership
    this.log = components.logger
    this.protocol = controlProtocol(init.cluster)
  }

  async start (handlers: ControlHandlers): Promise<void> {
    if (this.handlers !== null) return
    this.handlers = handlers
    await this.libp2p.handle(this.protocol, (stream, connection) => this.serve(stream, connection), {
      maxInboundStreams: LIMITS.maxInboundStreams,
      maxOutboundStreams: LIMITS.maxOutboundStreams
    })
  }

  async stop (): Promise<void> {
    if (this.handlers === null) return
    this.handlers = null
    await this.libp2p.unhandle(this.protocol)
  }

  async have (peer: PeerId | string, key: string, options: { signal?: AbortSignal } = {}): Promise<HaveAnswer> {
    return expectAnswer(await this.request(peer, { t: 'have', key }, options), 'have')
  }

  async ticket (peer: PeerId | string, key: string, options: { signal?: AbortSignal } = {}): Promise<TicketAnswer> {
    return expectAnswer(await this.request(peer, { t: 'ticket', key }, options), 'ticket')
  }

  /** Tells a holder its bytes of `key` failed verification here, so it re-checks its copy. */
  async corrupt (peer: PeerId | string, key: string, options: { signal?: AbortSignal } = {}): Promise<HaveAnswer> {
    return expectAnswer(await this.request(peer, { t: 'corrupt', key }, options), 'have')
  }

  async stats (peer: PeerId | string, options: { signal?: AbortSignal } = {}): Promise<NodeStats> {
    return expectAnswer(await this.request(peer, { t: 'stats' }, options), 'stats').stats
  }

  /** One request to a member (membership is proven first); throws WireError for a peer's refusal. */
  async request (peer: PeerId | string, request: ControlRequest, options: { signal?: AbortSignal } = {}): Promise<ControlAnswer> {
    const id = typeof peer === 'string' ? peerIdFromString(peer) : peer
    return await withinStreamDeadline(async signal => {
      if (!(await this.membership.ensure(id, { signal }))) throw new WireError('NOT_MEMBER', 'peer is not a member of this cluster')
      const stream = await this.libp2p.dialProtocol(id, this.protocol, { signal })
      const ms = new MessageStream(stream)
      try {
        await ms.write(request, { signal })
        const answer = await ms.read(controlAnswer, { signal })
        await ms.close({ signal })
        return answer
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        throw err
      }
    }, options.signal)
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    await withinStreamDeadline(async signal => { await this.answer(stream, connection, signal) })
  }

  private async answer (stream: Stream, connection: Connection, signal: AbortSignal): Promise<void> {
    const ms = new MessageStream(stream)
    const peer = connection.remotePeer.toString()
    let request: ControlRequest
    try {
      request = await ms.read(controlRequest, { signal })
    } catch (err) {
      // Malformed, oversized or too slow: reset, never crash.
      this.log.debug({ peer, err: (err as Error).message }, 'control: bad request; stream reset')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      return
    }
    let answer: ControlAnswer
    const handlers = this.handlers
    if (handlers === null) answer = { t: 'error', code: 'BUSY', message: 'stopping' }
    else if (!this.membership.isMember(peer)) answer = { t: 'error', code: 'NOT_MEMBER', message: 'prove membership first' }
    else {
      try {
        if (request.t === 'have') answer = await handlers.have(request.key, peer)
        else if (request.t === 'ticket') answer = await handlers.ticket(request.key, peer, remoteIp(connection))
        else if (request.t === 'corrupt') answer = await handlers.corrupt(request.key, peer)
        else answer = { t: 'stats', stats: await handlers.stats() }
      } catch (err) {
        if (err instanceof WireError) answer = { t: 'error', code: err.code, message: err.message.slice(0, 200) }
        else {
          this.log.warn({ peer, err }, 'control: request failed')
          answer = { t: 'error', code: 'INTERNAL', message: 'internal error' }
        }
      }
    }
    try {
      await ms.write(answer, { signal })
      await ms.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}
