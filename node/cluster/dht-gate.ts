import type { KadDHTComponents } from '@libp2p/kad-dht'
import type { PeerId } from '@libp2p/interface'
import { WireError } from '../../protocol/errors.ts'

/** Whether a peer may use the cluster's DHT (a member: it proved the cluster key). */
export type DhtAdmission = (peer: PeerId) => Promise<boolean>

function isPeerId (value: unknown): value is PeerId {
  return typeof value === 'object' && value !== null && 'toMultihash' in value && typeof (value as PeerId).toString === 'function'
}

/**
 * The DHT's components with both directions of its protocol kept to members: its stream handler
 * answers only peers `admit` lets in, and it opens streams only to them. Done here rather than with
 * libp2p's stream middleware (`libp2p.use`): libp2p 3.3 appends each inbound stream's handler to the
 * registered middleware list itself, so the list grows with every stream, later streams run earlier
 * handlers and the DHT's own queries hang (js-libp2p PR #3534, not released).
 */
export function gatedDhtComponents (components: KadDHTComponents, admit: DhtAdmission): KadDHTComponents {
  const registrar = components.registrar
  const connections = components.connectionManager
  const gatedRegistrar = new Proxy(registrar, {
    get (target, prop) {
      if (prop === 'handle') {
        const handle: typeof registrar.handle = async (protocol, handler, options) => {
          await target.handle(protocol, async (stream, connection) => {
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
        return handle
      }
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  const gatedConnections = new Proxy(connections, {
    get (target, prop) {
      if (prop === 'openStream') {
        const openStream: typeof connections.openStream = async (peer, protocol, options) => {
          if (isPeerId(peer) && !await admit(peer)) throw new WireError('NOT_MEMBER', 'not a member of this cluster')
          return await target.openStream(peer, protocol, options)
        }
        return openStream
      }
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  return new Proxy(components, {
    get (target, prop) {
      if (prop === 'registrar') return gatedRegistrar
      if (prop === 'connectionManager') return gatedConnections
      return Reflect.get(target, prop, target)
    }
  })
}
