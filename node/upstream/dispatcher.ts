import { createRequire } from 'node:module'
import type { Agent, Dispatcher, ProxyAgent } from 'undici'
import type { ServerConfig } from '../../config/types.ts'

const require = createRequire(import.meta.url)

/**
 * Loads only the undici parts the node uses: its entry point also loads fetch, WebSocket, the cache
 * and the mocks, about 13 MiB more resident memory for a node that never calls them. The entry point
 * gives every dispatcher its request/stream/pipeline methods this same way.
 */
function undici<T> (part: string): T {
  const dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object }
  if (!('request' in dispatcher.prototype)) Object.assign(dispatcher.prototype, require('undici/lib/api/index.js'))
  return require(`undici/lib/dispatcher/${part}.js`) as T
}

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
    const ProxyAgentClass = undici<typeof ProxyAgent>('proxy-agent')
    return new ProxyAgentClass({ uri: server.upstream_proxy, ...options })
  }
  const AgentClass = undici<typeof Agent>('agent')
  return new AgentClass(options)
}
