import { connect } from 'node:net'
import type { Socket } from 'node:net'

/** `count` TCP connections to 127.0.0.1:`port` from `localAddress` (any 127.x address), once each is open. */
export async function openFrom (port: number, localAddress: string, count: number): Promise<Socket[]> {
  return await Promise.all(Array.from({ length: count }, async () => {
    const socket = connect({ host: '127.0.0.1', port, localAddress })
    socket.on('error', () => {})
    await new Promise(resolve => socket.once('connect', resolve))
    return socket
  }))
}

/** How many of `sockets` the server has not hung up on. */
export function kept (sockets: Socket[]): number {
  return sockets.filter(s => !s.closed && s.readyState === 'open').length
}
