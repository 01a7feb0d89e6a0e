import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'

/** Listening sockets may share a port here (SO_REUSEPORT, with the kernel spreading connections). */
const REUSE_PORT = process.platform === 'linux' || process.platform === 'freebsd'

export interface Acceptors {
  readonly count: number
  close: () => Promise<void>
}

/**
 * Listens on `host:port` with `sockets` listening sockets in all: `start` listens with the main server on the
 * options given (the port checked free first, see claimPort), then the others hand their connections to
 * it (see addAcceptors). Returns the extra sockets, to close with the server.
 */
export async function listenShared (host: string, port: number, sockets: number, start: (options: { host: string, port: number, reusePort: boolean }) => Promise<Server>): Promise<Acceptors> {
  const server = await start({ host, port: await claimPort(host, port), reusePort: REUSE_PORT })
  return await addAcceptors(server, sockets - 1)
}

/**
 * Checks that the port is free by taking it alone for a moment, and returns it (the port picked, for 0).
 * Sockets that share a port would also share it with another process that did the same: a second node
 * started on a taken port must fail as ever, not quietly get half of the connections.
 */
async function claimPort (host: string, port: number): Promise<number> {
  const probe = createServer()
  await listen(probe, { host, port })
  const picked = (probe.address() as AddressInfo).port
  await new Promise<void>(resolve => probe.close(() => resolve()))
  return picked
}

/**
 * More sockets listening on the address of `server` (which listens with `reusePort`); their connections
 * are handed to `server` as its own. Node accepts one connection per listening socket per event-loop
 * turn, and a node busy moving gigabytes takes hundreds of ms a turn: with one socket, connections
 * opened in a burst waited in the kernel's accept queue for seconds (10 s and more under load). Where
 * ports cannot be shared, there are none.
 */
async function addAcceptors (server: Server, count: number): Promise<Acceptors> {
  const address = server.address()
  const extra: Server[] = []
  if (REUSE_PORT && address !== null && typeof address === 'object') {
    for (let i = 0; i < count; i++) {
      const acceptor = createServer(socket => server.emit('connection', socket))
      try {
        await listen(acceptor, { host: address.address, port: address.port, reusePort: true })
      } catch {
        // The main socket does not share its port (a Node without reusePort): one socket it is.
        break
      }
      extra.push(acceptor)
    }
  }
  return {
    count: extra.length,
    close: async () => {
      await Promise.all(extra.splice(0).map(async s => { await new Promise<void>(resolve => s.close(() => resolve())) }))
    }
  }
}

/** `server.listen` as a promise. */
export async function listen (server: Server, options: { host: string, port: number, reusePort?: boolean }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => { server.off('error', reject); resolve() })
  })
}
