import {
  AbortedError, AimirrorError, UpstreamProtocolError, UpstreamTimeoutError, UpstreamUnreachableError
} from '../errors.ts'

const UNREACHABLE = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EHOSTUNREACH', 'EHOSTDOWN',
  'ENETUNREACH', 'ENETDOWN', 'EPIPE', 'ECONNABORTED', 'EADDRNOTAVAIL', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
  'UND_ERR_PRX_CONN', 'UND_ERR_PRX_TLS', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN'
])
/** A connect the local network refused: a blackhole or prohibit route, a firewall's OUTPUT rule. */
const CONNECT_REFUSED_HERE = new Set(['EINVAL', 'EPERM', 'EACCES'])
const TIMEOUT = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
const PROTOCOL = new Set(['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_HEADERS_OVERFLOW', 'UND_ERR_INFO', 'UND_ERR_RESPONSE'])

/** A string field (`code`, `syscall`) of an error, if it has one. */
function fieldOf (err: unknown, name: 'code' | 'syscall'): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const value = (err as Record<string, unknown>)[name]
  return typeof value === 'string' ? value : undefined
}

/**
 * Maps an undici / socket error to the catalogue: refused, DNS, resets → ERR_UPSTREAM_UNREACHABLE;
 * connect, header and body timeouts → ERR_UPSTREAM_TIMEOUT; aborts → ERR_ABORTED; parser and length
 * errors → ERR_UPSTREAM_PROTOCOL. Catalogue errors pass through; anything else (a bug) is returned as is.
 * `origin` is added to the detail so a client sees which upstream failed (never a full URL: it may be signed).
 */
export function toUpstreamError (err: unknown, origin?: string): unknown {
  if (err instanceof AimirrorError) return err
  const detail = origin === undefined ? undefined : { upstream: origin }
  // AggregateError (happy-eyeballs tried several addresses) carries the interesting code on its members.
  const inner = err instanceof AggregateError && err.errors.length > 0 ? err.errors[0] : err
  const cause = (err as { cause?: unknown } | null)?.cause
  const code = fieldOf(err, 'code') ?? fieldOf(inner, 'code') ?? fieldOf(cause, 'code')
  const name = (err as { name?: unknown } | null)?.name
  if (code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR' || name === 'AbortError') {
    return new AbortedError(undefined, { cause: err })
  }
  if (name === 'TimeoutError' || (code !== undefined && TIMEOUT.has(code))) {
    return new UpstreamTimeoutError(undefined, { cause: err, detail })
  }
  if (code !== undefined && UNREACHABLE.has(code)) return new UpstreamUnreachableError(undefined, { cause: err, detail })
  const syscall = fieldOf(err, 'syscall') ?? fieldOf(inner, 'syscall') ?? fieldOf(cause, 'syscall')
  if (code !== undefined && CONNECT_REFUSED_HERE.has(code) && syscall === 'connect') return new UpstreamUnreachableError(undefined, { cause: err, detail })
  if (code !== undefined && (PROTOCOL.has(code) || code.startsWith('HPE_'))) {
    return new UpstreamProtocolError(undefined, { cause: err, detail })
  }
  return err
}
