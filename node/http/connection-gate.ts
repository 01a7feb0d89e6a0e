import type { Server } from 'node:net'
import type { Socket } from 'node:net'

export interface ConnectionLimits {
  /** Connections open at once, in all. */
  total: number
  /** Connections open at once from one remote address (but those `unbounded` names: loopback by default). */
  perAddress: number
}

/** Several nodes on one machine (dev runs, tests) all reach each other from a loopback address. */
export function isLoopback (address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.')
}

/**
 * Hangs up on connections past the limits as they arrive. Node's `maxConnections` counts only what the
 * main listening socket accepted, not connections handed over by extra acceptors (listenShared), and has
 * no per-address bound: one host re-opening slow connections could take every slot of a LAN-facing port.
 */
export function gateConnections (server: Server, limits: ConnectionLimits, unbounded: (address: string) => boolean = isLoopback): void {
  let total = 0
  const byAddress = new Map<string, number>()
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? ''
    const fromAddress = byAddress.get(address) ?? 0
    if (total >= limits.total || (fromAddress >= limits.perAddress && !unbounded(address))) {
      socket.destroy()
      return
    }
    total++
    byAddress.set(address, fromAddress + 1)
    socket.once('close', () => {
      total--
      const left = (byAddress.get(address) ?? 1) - 1
      if (left === 0) byAddress.delete(address)
      else byAddress.set(address, left)
    })
  })
}
