import { LogController } from 'fastify'
import type { FastifyInstance, FastifyRequest } from 'fastify'

/** Fastify's own lines with the rest of its logging: its pair per request is replaced by logRequests' one. */
export class OneLinePerRequest extends LogController {
  override incomingRequest (): void {}
  override requestCompleted (): void {}
}

/** The connection's bytes written when each request began: the difference is what its answer sent. */
const writtenAtStart = new WeakMap<FastifyRequest, number>()

/**
 * One info line per request, when it ends: method, URL (signatures and credentials redacted by the
 * logger's serializer), status, whether the cache had it, bytes sent (with headers) and time. Admin
 * routes log at a quieter level (see admin.ts), so polling dashboards do not fill the log.
 */
export function logRequests (app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    writtenAtStart.set(request, request.socket?.bytesWritten ?? 0)
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    const started = writtenAtStart.get(request)
    const bytes = started === undefined ? undefined : (request.socket?.bytesWritten ?? started) - started
    const cache = reply.getHeader('x-cache')
    request.log.info({
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ...(typeof cache === 'string' ? { cache } : {}),
      bytes,
      ms: Math.round(reply.elapsedTime),
      remote: request.ip
    }, 'request')
    done()
  })
}
