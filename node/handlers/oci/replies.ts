import type { FastifyReply } from 'fastify'
import { bearerChallenge } from './challenge.ts'
import { TOKEN_PATH } from './api-path.ts'

/** Every registry answer carries it; clients check it on the ping. */
export const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' }

/** Distribution-spec error codes the mirror answers with itself. */
export type OciErrorCode =
  | 'UNAUTHORIZED' | 'DENIED' | 'NAME_UNKNOWN' | 'NAME_INVALID' | 'MANIFEST_UNKNOWN' | 'MANIFEST_INVALID'
  | 'BLOB_UNKNOWN' | 'DIGEST_INVALID' | 'UNSUPPORTED' | 'TOOMANYREQUESTS' | 'UNKNOWN'

export function ociErrorBody (code: OciErrorCode, message: string, detail?: unknown): Buffer {
  return Buffer.from(JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] }))
}

/** An error document in the registry format (clients show `message`), with a real length. */
export async function sendOciError (reply: FastifyReply, head: boolean, status: number, code: OciErrorCode, message: string,
  headers: Readonly<Record<string, string>> = {}): Promise<void> {
  const body = ociErrorBody(code, message)
  reply.code(status).headers({
    ...API_VERSION_HEADER,
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(body.length)
  })
  await reply.send(head ? undefined : body)
}

export interface ChallengeSpec {
  /** Base URL of the mirror as the client reaches it. */
  readonly mirrorBase: string
  /** Registry the token will be for (`docker.io`, `ghcr.io`); the token endpoint reads it back. */
  readonly service: string
  /** `repository:<name as the client wrote it>:pull`; absent on the ping. */
  readonly scope?: string
  readonly error?: 'invalid_token' | 'insufficient_scope'
}

/** The mirror's own challenge: its realm, so clients fetch tokens from it and not from the real registry. */
export function challengeHeader (spec: ChallengeSpec): string {
  return bearerChallenge({ realm: spec.mirrorBase + TOKEN_PATH, service: spec.service, scope: spec.scope, error: spec.error })
}

export async function sendChallenge (reply: FastifyReply, head: boolean, spec: ChallengeSpec): Promise<void> {
  await sendOciError(reply, head, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': challengeHeader(spec) })
}

/** Upstream said no (or does not have it): what to relay. */
export interface Refusal {
  readonly status: number
  /** Upstream headers worth relaying (rate limits, Retry-After). */
  readonly headers: Readonly<Record<string, string>>
  /** Upstream's own error document, when there was one. */
  readonly body?: Buffer
  readonly contentType?: string
  readonly what: 'manifest' | 'blob' | 'repository'
  /** What the client is told when upstream sent no error document (default: upstream's status). */
  readonly message?: string
}

const UNKNOWN_CODE = { manifest: 'MANIFEST_UNKNOWN', blob: 'BLOB_UNKNOWN', repository: 'NAME_UNKNOWN' } as const

/** Relays a refusal in the registry format; upstream's own error document when it sent one. */
export async function sendRefusal (reply: FastifyReply, head: boolean, r: Refusal): Promise<void> {
  const headers = { ...r.headers }
  delete headers['www-authenticate']
  if (r.body !== undefined && r.body.length > 0) {
    reply.code(r.status).headers({
      ...API_VERSION_HEADER,
      ...headers,
      'content-type': r.contentType ?? 'application/json; charset=utf-8',
      'content-length': String(r.body.length)
    })
    await reply.send(head ? undefined : r.body)
    return
  }
  const code: OciErrorCode = r.status === 404
    ? UNKNOWN_CODE[r.what]
    : r.status === 401 ? 'UNAUTHORIZED' : r.status === 403 ? 'DENIED' : r.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN'
  await sendOciError(reply, head, r.status, code, r.message ?? `upstream answered ${r.status}`, headers)
}

export function pullScope (name: string): string {
  return `repository:${name}:pull`
}
