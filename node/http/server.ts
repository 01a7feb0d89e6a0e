import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { fastify } from 'fastify'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config/types.ts'
import { AbortedError, BadRequestError, NoRouteError, RequestLoopError, ShuttingDownError } from '../errors.ts'
import type { HandlerRegistry } from '../handlers/registry.ts'
import type { Logger } from '../log.ts'
import type { Router } from '../router/router.ts'
import { cameBack } from '../upstream/via.ts'
import { registerAdminRoutes } from './admin.ts'
import { dirStats } from './dir-stats.ts'
import { handleError } from './error-handler.ts'
import { mirrorBaseFor, publicBase } from './mirror-base.ts'
import { hostPort } from './host-port.ts'
import type { CacheStatsProvider, DownloadsProvider } from './providers.ts'
import type { Strategies, StrategyContext } from './strategy.ts'
import { logRequests, OneLinePerRequest } from './request-log.ts'

export interface HttpServerComponents {
  config: Config
  logger: Logger
  router: Router
  handlers: HandlerRegistry
  strategies: Strategies
  downloads?: DownloadsProvider
  cacheStats?: CacheStatsProvider
  upstreamsAway?: () => Array<{ origin: string, until: string }>
}

export interface HttpServerInit {
  /** Aborts every request's signal (the node is stopping hard). */
  stopSignal?: AbortSignal
}

/** Aborted when the client leaves before its response finished, or when the node stops hard. */
function requestSignal (reply: FastifyReply, stop: AbortSignal | undefined): AbortSignal {
  const ac = new AbortController()
  const onStop = (): void => { ac.abort(new ShuttingDownError()) }
  let finished = false
  reply.raw.once('finish', () => { finished = true })
  reply.raw.once('close', () => {
    stop?.removeEventListener('abort', onStop)
    if (!finished) ac.abort(new AbortedError('Client went away'))
  })
  if (stop?.aborted === true) onStop()
  else stop?.addEventListener('abort', onStop, { once: true })
  return ac.signal
}

/**
 * The node's HTTP front: /health and /stats first, then one catch-all route for every method that
 * matches a rule, asks the rule's handler, and hands the request to the rule's strategy. Request bodies
 * are never parsed: they stay on `request.raw` and stream upstream. Errors get JSON answers from one
 * error handler; nothing a client or an upstream does can crash the process.
 */
export function createHttpServer (components: HttpServerComponents, init: HttpServerInit = {}): FastifyInstance {
  const { config, router, handlers, strategies } = components
  const fixedBase = publicBase(config.server.public_host)
  // HTTP/1.0 clients may send no Host: use the address they actually connected to.
  const localHost = (request: FastifyRequest): string => {
    const address = request.socket?.localAddress ?? config.server.host
    const port = request.socket?.localPort ?? config.server.port
    return hostPort(address, port)
  }

  // Request ids carry a tag of this run: a log file appended to across restarts would otherwise repeat
  // req-1, req-2… and lines of two runs could be taken for one request's.
  const run = randomBytes(3).toString('hex')
  let requests = 0
  const app = fastify({
    loggerInstance: components.logger.child({ component: 'http' }) as FastifyBaseLogger,
    genReqId: () => `${run}-${++requests}`,
    // One line per request, written when it ends (see logRequests): Fastify's two said less.
    logController: new OneLinePerRequest(),
    exposeHeadRoutes: false,
    requestTimeout: 0,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Node's own check answers a bare 400 with no body: the hook below says why, as every error does.
    http: { requireHostHeader: false },
    routerOptions: { ignoreDuplicateSlashes: false, ignoreTrailingSlash: false },
    frameworkErrors: (err, request, reply) => {
      handleError(new BadRequestError(err.message, { cause: err, detail: { reason: 'bad_url' } }), request, reply)
    },
    // A request Node's parser refused (bad bytes in the line, oversized headers): the catalogue's body too.
    clientErrorHandler: (err, socket) => {
      if (!socket.writable) return
      const tooLarge = (err as { code?: string }).code === 'HPE_HEADER_OVERFLOW'
      const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'
      const body = JSON.stringify({ error: 'ERR_BAD_REQUEST', message: tooLarge ? 'Request headers too large' : 'Malformed HTTP request', reason: (err as { code?: string }).code ?? 'bad_request' })
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
    }
  })

  // A client told to use the node as an HTTPS proxy sends CONNECT, which Node's server would answer by
  // closing the connection: say what the node is instead.
  app.server.on('connect', (_req: unknown, socket: Duplex) => {
    const body = JSON.stringify({ error: 'ERR_METHOD_NOT_ALLOWED', message: 'aimirror is a mirror, not an HTTPS proxy: point the client\'s index or registry URL at it (see the README)', reason: 'connect_not_supported' })
    socket.on('error', () => {})
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  })

  // Bodies are left unread on request.raw; the proxy streams them upstream with backpressure.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
  app.setErrorHandler(handleError)
  // HTTP/1.1 requires Host (RFC 9112 §3.2); links the node writes back name it.
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) done(new BadRequestError('HTTP/1.1 request without a Host header', { detail: { reason: 'missing_host' } }))
    else done()
  })

  logRequests(app)

  const cacheStats = components.cacheStats ?? (async () => await dirStats(config.cache.dir))
  registerAdminRoutes(app, { downloads: components.downloads, cacheStats, upstreamsAway: components.upstreamsAway })

  async function serve (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (cameBack(request.headers.via)) throw new RequestLoopError()
    const match = router.match(request.raw.url ?? '')
    if (match === null) throw new NoRouteError(undefined, { detail: { path: request.raw.url?.split('?')[0] } })
    const ctx: StrategyContext = {
      rule: match.rule,
      upstreamUrl: match.upstreamUrl,
      request,
      reply,
      mirrorBase: mirrorBaseFor(request, fixedBase, localHost(request)),
      signal: requestSignal(reply, init.stopSignal)
    }
    const handler = handlers.get(match.rule.handler)
    if (handler.handle !== undefined && await handler.handle(ctx)) return reply
    const strategy = match.rule.strategy === 'parallel' ? (strategies.parallel ?? strategies.proxy) : strategies.proxy
    await strategy(ctx)
    return reply
  }

  app.all('*', serve)
  // Targets the router cannot take at all (absolute-form, `*`) land here and are refused by the router.
  app.setNotFoundHandler(serve)
  return app
}
