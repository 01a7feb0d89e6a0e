import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { isAimirrorError } from '../errors.ts'
import { toUpstreamError } from '../upstream/errors.ts'

/** The one place where error codes become HTTP statuses. */
const STATUS: Readonly<Record<string, number>> = {
  ERR_BAD_REQUEST: 400,
  ERR_NO_ROUTE: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_UPSTREAM_DENIED: 403,
  ERR_RANGE_NOT_SATISFIABLE: 416,
  ERR_UPSTREAM_UNREACHABLE: 502,
  ERR_UPSTREAM_PROTOCOL: 502,
  ERR_DIGEST_MISMATCH: 502,
  ERR_UPSTREAM_TIMEOUT: 504,
  ERR_OVERLOADED: 503,
  ERR_SHUTTING_DOWN: 503,
  ERR_DISK_FULL: 503,
  ERR_CACHE_DISK: 503,
  ERR_ABORTED: 503,
  ERR_CORRUPT_BLOB: 500,
  ERR_REQUEST_LOOP: 508
}

export function statusForCode (code: string): number {
  return STATUS[code] ?? 500
}

export interface ErrorBody {
  error: string
  message: string
  [key: string]: unknown
}

/** Status and JSON body for any error: catalogue errors by code, fastify's own 4xx kept, the rest a 500. */
export function describeError (error: unknown): { status: number, body: ErrorBody } {
  // Upstream body errors surface here raw (undici / socket codes) when a stream fails before headers.
  const err = toUpstreamError(error)
  if (isAimirrorError(err)) {
    return { status: statusForCode(err.code), body: { error: err.code, message: err.message, ...err.detail } }
  }
  const fe = err as Partial<FastifyError> | null
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500
  if (status >= 400 && status < 500) {
    return { status, body: { error: status === 404 ? 'ERR_NO_ROUTE' : 'ERR_BAD_REQUEST', message: fe?.message ?? 'Bad request', fastify_code: fe?.code } }
  }
  // Internal details (stack, paths) stay in the log.
  return { status: 500, body: { error: 'ERR_INTERNAL', message: 'Internal error' } }
}

/**
 * Fastify error handler. Before headers are sent: a JSON `{ error, message }` with the mapped status
 * (headers a strategy had already set are discarded, they described another body). After: the
 * response cannot change any more, so the connection is destroyed and the client sees a failed transfer.
 */
export function handleError (err: Error, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = describeError(err)
  if (status < 500) {
    // The client's mistake (or the upstream's no): said in a line, no stack; the client got the reason.
    request.log.info({ code: body.error, status, reason: body.message, url: request.url }, 'request refused')
  } else if (status === 502 || status === 503 || status === 504) {
    // The upstream's trouble (or a stop), routine for a mirror: what and why, without a stack.
    const cause = (err as { cause?: { code?: unknown, message?: unknown } }).cause
    const why = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined
    request.log.warn({ code: body.error, status, reason: body.message, ...(why === undefined ? {} : { cause: why }), url: request.url }, 'request failed')
  } else {
    // Unexpected: the stack says where.
    request.log.error({ err, code: body.error, url: request.url }, 'request failed')
  }
  if (reply.raw.headersSent || reply.sent) {
    reply.raw.destroy()
    return
  }
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
  if (status === 503) reply.header('retry-after', '5')
  if (status === 405 && typeof body.allow === 'string') reply.header('allow', body.allow)
  reply.code(status).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store')
  void reply.send(request.url.startsWith('/v2/') ? withRegistryErrors(status, body) : body)
}

/**
 * Registry clients (docker, skopeo, containerd) show only the distribution spec's `errors` list: it is
 * added beside the catalogue's fields, so "upstream unreachable" reaches the user instead of a bare 502.
 */
function withRegistryErrors (status: number, body: ErrorBody): ErrorBody {
  const code = status >= 500 ? 'UNAVAILABLE' : REGISTRY_CODES[status] ?? 'UNSUPPORTED'
  return { ...body, errors: [{ code, message: body.message, detail: { error: body.error } }] }
}

const REGISTRY_CODES: Readonly<Record<number, string>> = { 401: 'UNAUTHORIZED', 403: 'DENIED', 404: 'NAME_UNKNOWN', 429: 'TOOMANYREQUESTS' }
