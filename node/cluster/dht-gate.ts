import type { KadDHTComponents } from '@libp2p/kad-dht'
import type { PeerId } from '@libp2p/interface'
import { WireError } from '../../protocol/errors.ts'

/** Whether a peer may use the cluster's DHT (a member: it proved the cluster key). */
export type DhtAdmission = (peer: PeerId) => Promise<boolean>

function isPeerId (value: unknown): value is PeerId {
  return typeof value === 'object' && value !== null && 'toMultihash' in value && typeof (value as PeerId).toString === 'function'
}

/** `target` with some properties replaced; its own methods keep `target` as `this`. */
function overriding<T extends object> (target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get (t, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof T]
      const value: unknown = Reflect.get(t, prop, t)
      return typeof value === 'function' ? value.bind(t) : value
    }
  })
}

/**
 * The DHT's components with both directions of its protocol kept to members: its stream handler
 * answers only peers `admit` lets in, and it opens streams only to them. Done here rather than with
 * libp2p's stream middleware (`libp2p.use`): libp2p 3.3 appends each inbound stream's handler to the
 * registered middleware list itself, so the list grows with every stream, later streams run earlier
 * handlers and the DHT's own queries hang (js-libp2p PR #3534, not released).
 */
export function gatedDhtComponents (components: KadDHTComponents, admit: DhtAdmission): KadDHTComponents {
  const { registrar, connectionManager } = components
  const handle: typeof registrar.handle = async (protocol, handler, options) => {
    await registrar.handle(protocol, async (stream, connection) => {
      let ok: boolean
      try {
        ok = await admit(connection.remotePeer)
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        return
      }
      if (!ok) {
        stream.abort(new WireError('NOT_MEMBER', 'not a member of this cluster'))
        return
      }
      await handler(stream, connection)
    }, options)
  }
  const openStream: typeof connectionManager.openStream = async (peer, protocol, options) => {
    if (isPeerId(peer) && !await admit(peer)) throw new WireError('NOT_MEMBER', 'not a member of this cluster')
    return await connectionManager.openStream(peer, protocol, options)
  }
  return overriding(components, {
    registrar: overriding(registrar, { handle }),
    connectionManager: overriding(connectionManager, { openStream })
  })
}
