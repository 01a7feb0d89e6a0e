import { Agent, ProxyAgent } from 'undici'
import type { Dispatcher } from 'undici'
import type { ServerConfig } from '../../config/types.ts'

export interface DispatcherInit {
  /** Connections per upstream origin; sized for parallel Range downloads. Default 256. */
  connections?: number
  /** Idle keep-alive sockets are closed after this long. Default 30 s. */
  keepAliveTimeoutMs?: number
}

/**
 * The node's one upstream connection pool (keep-alive, many connections per origin), or a ProxyAgent with
 * the same settings when `server.upstream_proxy` is set. The HTTP front and the fetch engine share it, so
 * a Range fill reuses the sockets a proxied request opened. Timeouts come from config: connect, and a
 * read timeout applied both to the response headers and to every gap between body chunks.
 */
export function createUpstreamDispatcher (server: ServerConfig, init: DispatcherInit = {}): Dispatcher {
  const options = {
    connections: init.connections ?? 256,
    keepAliveTimeout: init.keepAliveTimeoutMs ?? 30_000,
    // Registries (HF, OCI) send long Link / WWW-Authenticate headers.
    maxHeaderSize: 64 * 1024,
    connectTimeout: Math.max(1, Math.round(server.connect_timeout_s * 1000)),
    headersTimeout: Math.max(1, Math.round(server.read_timeout_s * 1000)),
    bodyTimeout: Math.max(1, Math.round(server.read_timeout_s * 1000))
  }
  if (server.upstream_proxy !== null && server.upstream_proxy !== '') {
    return new ProxyAgent({ uri: server.upstream_proxy, ...options })
  }
  return new Agent(options)
}
