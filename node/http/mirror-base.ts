import type { FastifyRequest } from 'fastify'
import { BadRequestError } from '../errors.ts'

// host[:port], IPv6 literal in brackets; nothing that could break out of a URL or an HTML attribute.
// Names as hosts really have them: underscores (Compose, Windows), a final dot (a fully qualified name).
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

function first (value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  const head = v?.split(',')[0]?.trim()
  return head === '' ? undefined : head
}

/** `server.public_host` as a base URL: a bare host[:port] gets `http://`; no trailing slash. Null when unset. */
export function publicBase (publicHost: string | null): string | null {
  if (publicHost === null || publicHost.trim() === '') return null
  const v = publicHost.trim()
  return (/^https?:\/\//i.test(v) ? v : `http://${v}`).replace(/\/+$/, '')
}

/**
 * The base URL this client reaches the mirror at: `public_host` when configured, else the request's
 * `X-Forwarded-Proto`/`X-Forwarded-Host` (a reverse proxy in front) or its `Host`. A LAN client thus
 * gets links it can follow. Host values are checked strictly, since they end up inside served pages.
 */
export function mirrorBaseFor (request: FastifyRequest, fixed: string | null, fallbackHost: string): string {
  if (fixed !== null) return fixed
  const headers = request.headers
  const proto = first(headers['x-forwarded-proto'])?.toLowerCase() ?? 'http'
  const host = first(headers['x-forwarded-host']) ?? first(headers.host) ?? fallbackHost
  if (proto !== 'http' && proto !== 'https') throw new BadRequestError('Bad X-Forwarded-Proto', { detail: { reason: 'bad_forwarded_proto' } })
  if (!HOST.test(host)) throw new BadRequestError('Bad Host header', { detail: { reason: 'bad_host' } })
  return `${proto}://${host}`
}
