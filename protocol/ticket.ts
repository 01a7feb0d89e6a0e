import { createHmac, timingSafeEqual } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

/**
 * Data-plane tickets: a node hands one to a member over the authenticated control stream; the member
 * presents it on the HTTP data port. Stateless: the payload (blob, holder peer id, the address the
 * control connection came from, expiry) is signed with a secret only the issuing node knows.
 */

export interface TicketClaims {
  /** sha256 hex of the blob the ticket opens. */
  readonly digest: string
  /** Peer id of the member it was issued to. */
  readonly peer: string
  /** IP address the member's control connection came from; the data request must come from it too. */
  readonly ip: string
  /** Expiry, ms since the epoch. */
  readonly exp: number
}

function sign (secret: KeyObject, payload: string): string {
  return createHmac('sha256', secret).update('aimirror-ticket-v1\0').update(payload).digest('base64url')
}

export function issueTicket (secret: KeyObject, claims: TicketClaims): string {
  const payload = Buffer.from(JSON.stringify({ d: claims.digest, p: claims.peer, i: claims.ip, e: claims.exp })).toString('base64url')
  return `v1.${payload}.${sign(secret, payload)}`
}

/** The claims of a genuine, unexpired ticket; null for anything else. */
export function readTicket (secret: KeyObject, ticket: string, now: number): TicketClaims | null {
  const parts = ticket.split('.')
  if (parts.length !== 3 || parts[0] !== 'v1') return null
  const [, payload, mac] = parts as [string, string, string]
  const expected = Buffer.from(sign(secret, payload))
  const given = Buffer.from(mac)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null
  let raw: unknown
  try { raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) } catch { return null }
  const r = raw as { d?: unknown, p?: unknown, i?: unknown, e?: unknown }
  if (typeof r.d !== 'string' || typeof r.p !== 'string' || typeof r.i !== 'string' || typeof r.e !== 'number') return null
  if (r.e <= now) return null
  return { digest: r.d, peer: r.p, ip: r.i, exp: r.e }
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one address. */
export function normaliseIp (ip: string): string {
  const lower = ip.toLowerCase()
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower
}
