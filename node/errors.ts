/**
 * The node's error catalogue. Every error has a stable `code`; HTTP statuses are chosen from the code
 * in exactly one place (node/http/error-handler.ts). Lower layers never import HTTP concepts.
 * docs/errors.md documents every code (a unit test checks it).
 */

export interface AimirrorErrorOptions {
  cause?: unknown
  /** Extra machine-readable detail, safe to show to a client (never secrets). */
  detail?: Record<string, unknown>
}

export class AimirrorError extends Error {
  readonly code: string
  readonly detail: Record<string, unknown> | undefined

  constructor (code: string, message: string, options: AimirrorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.detail = options.detail
  }
}

function defineError (name: string, code: string, defaultMessage: string): new (message?: string, options?: AimirrorErrorOptions) => AimirrorError {
  const Cls = class extends AimirrorError {
    static readonly code = code
    constructor (message: string = defaultMessage, options: AimirrorErrorOptions = {}) {
      super(code, message, options)
      this.name = name
    }
  }
  Object.defineProperty(Cls, 'name', { value: name })
  return Cls
}

/** The request itself is malformed (bad path, bad Range syntax, path escaping its prefix). */
export const BadRequestError = defineError('BadRequestError', 'ERR_BAD_REQUEST', 'Malformed request')
/** No rule matches the path. */
export const NoRouteError = defineError('NoRouteError', 'ERR_NO_ROUTE', 'No rule matches this path')
/** A request this node sent upstream came back to it (an upstream that leads to the node itself). */
export const RequestLoopError = defineError('RequestLoopError', 'ERR_REQUEST_LOOP', 'This request came back to the node that sent it upstream: a rule\'s upstream (or the upstream proxy) leads to this node')
/** The upstream could not be reached (DNS, refused, reset before headers). */
export const UpstreamUnreachableError = defineError('UpstreamUnreachableError', 'ERR_UPSTREAM_UNREACHABLE', 'Upstream is unreachable')
/** The upstream did not answer in time. */
export const UpstreamTimeoutError = defineError('UpstreamTimeoutError', 'ERR_UPSTREAM_TIMEOUT', 'Upstream timed out')
/** The upstream answered with something unusable (bad length, broken Range support, reset mid-body). */
export const UpstreamProtocolError = defineError('UpstreamProtocolError', 'ERR_UPSTREAM_PROTOCOL', 'Upstream sent an invalid response')
/** Downloaded bytes do not match the digest published for them. Never served, never cached. */
export const DigestMismatchError = defineError('DigestMismatchError', 'ERR_DIGEST_MISMATCH', 'Downloaded content does not match its digest')
/** The requested byte range cannot be satisfied. */
export const RangeNotSatisfiableError = defineError('RangeNotSatisfiableError', 'ERR_RANGE_NOT_SATISFIABLE', 'Requested range not satisfiable')
/** Too much work queued; the client should retry later. */
export const OverloadedError = defineError('OverloadedError', 'ERR_OVERLOADED', 'Node is overloaded')
/** The disk is full or the cache budget cannot hold the file; the node passes it through instead. */
export const DiskFullError = defineError('DiskFullError', 'ERR_DISK_FULL', 'No disk space (or no free inodes) for the cache')
/** The cache's disk refused a write for another reason (read-only, not permitted, an I/O error); passed through instead. */
export const CacheDiskError = defineError('CacheDiskError', 'ERR_CACHE_DISK', 'The cache disk refused a write')

/** Codes of the file-system errors that mean the cache cannot take a file now (see cacheDiskError). */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT'])
const DISK_REFUSED_CODES = new Set(['EROFS', 'EACCES', 'EPERM', 'EIO'])

/**
 * A file-system error of the cache's disk as the catalogue's error (DiskFullError, CacheDiskError), or
 * null when it is none of those.
 */
export function cacheDiskError (err: unknown): AimirrorError | null {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return null
  if (DISK_FULL_CODES.has(code)) return new DiskFullError(undefined, { cause: err })
  if (DISK_REFUSED_CODES.has(code)) return new CacheDiskError(`The cache disk refused a write (${code})`, { cause: err })
  return null
}

/** Whether the error says the cache's disk cannot take the file (the file is passed through instead). */
export function isCacheDiskFailure (err: unknown): boolean {
  return isAimirrorError(err) && (err.code === 'ERR_DISK_FULL' || err.code === 'ERR_CACHE_DISK')
}
/** The operation was cancelled because nobody wants its result any more. */
export const AbortedError = defineError('AbortedError', 'ERR_ABORTED', 'Operation aborted')
/** The node is shutting down. */
export const ShuttingDownError = defineError('ShuttingDownError', 'ERR_SHUTTING_DOWN', 'Node is shutting down')
/** A cached blob is missing or corrupt on disk; it is dropped from the index. */
export const CorruptBlobError = defineError('CorruptBlobError', 'ERR_CORRUPT_BLOB', 'Cached blob is missing or corrupt')

/** The path exists but not for this HTTP method (the node's own endpoints: /health, /stats). */
export const MethodNotAllowedError = defineError('MethodNotAllowedError', 'ERR_METHOD_NOT_ALLOWED', 'Method not allowed here')

/** The upstream refused the credentials presented for a resource (or their absence): its token realm or the registry said 401/403. */
export const UpstreamDeniedError = defineError('UpstreamDeniedError', 'ERR_UPSTREAM_DENIED', 'Upstream refused access')

/** The cluster cannot start: its key file is missing or malformed, or its peer identity cannot be kept. */
export const ClusterSetupError = defineError('ClusterSetupError', 'ERR_CLUSTER_SETUP', 'The LAN cluster cannot start')

/** The node cannot start: a port it must listen on is taken or not allowed, or the cache directory is unusable. */
export const StartError = defineError('StartError', 'ERR_START', 'The node cannot start')

export const ERROR_CODES: readonly string[] = [
  'ERR_BAD_REQUEST', 'ERR_NO_ROUTE', 'ERR_UPSTREAM_UNREACHABLE', 'ERR_UPSTREAM_TIMEOUT', 'ERR_UPSTREAM_PROTOCOL',
  'ERR_DIGEST_MISMATCH', 'ERR_RANGE_NOT_SATISFIABLE', 'ERR_OVERLOADED', 'ERR_DISK_FULL', 'ERR_ABORTED',
  'ERR_SHUTTING_DOWN', 'ERR_CORRUPT_BLOB', 'ERR_METHOD_NOT_ALLOWED', 'ERR_UPSTREAM_DENIED',
  'ERR_CLUSTER_SETUP', 'ERR_START', 'ERR_REQUEST_LOOP', 'ERR_CACHE_DISK'
]

export function isAimirrorError (err: unknown): err is AimirrorError {
  return err instanceof AimirrorError
}

/** Whether `err` is a catalogue error its maker marked with `detail.reason` (a kind the code acts on). */
/** The upstream did not answer: it could not be reached, or timed out (not an answer it gave). */
export function isNoAnswer (err: unknown): boolean {
  return isAimirrorError(err) && (err.code === 'ERR_UPSTREAM_UNREACHABLE' || err.code === 'ERR_UPSTREAM_TIMEOUT')
}

export function hasReason (err: unknown, reason: string): boolean {
  return isAimirrorError(err) && err.detail?.reason === reason
}
