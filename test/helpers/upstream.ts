import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface SeenRequest {
  method: string
  url: string
  /** Header lines as received: repeats and order kept. */
  rawHeaders: string[]
}

export interface FakeUpstream {
  /** http://127.0.0.1:port */
  readonly url: string
  readonly seen: SeenRequest[]
  close: () => Promise<void>
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

/**
 * A small real HTTP server on 127.0.0.1:0 for behaviours the file server does not cover (index pages,
 * gzip, repeated headers, resets). Records every request; close() destroys open sockets.
 */
export async function startUpstream (handler: UpstreamHandler): Promise<FakeUpstream> {
  const seen: SeenRequest[] = []
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders] })
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)))
    })
  })
  server.on('connection', (socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    async close () {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function deadPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** All values of a header in a raw list, in order. */
export function rawValues (raw: readonly string[], name: string): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]?.toLowerCase() === name) out.push(raw[i + 1] ?? '')
  return out
}
