import type { IncomingHttpHeaders } from 'node:http'

/**
 * Whether a client asks caches on the way to check with the origin before answering: request
 * `Cache-Control: no-cache` or `max-age=0` (pip sends `max-age=0` for every index page; conda and curl
 * users send `no-cache` to force a refresh), or HTTP/1.0 `Pragma: no-cache` when no Cache-Control is
 * present (RFC 9111 §5.4). The metadata cache then revalidates its copy even within its TTL.
 */
export function clientRevalidates (headers: IncomingHttpHeaders): boolean {
  const cc = joined(headers['cache-control'])
  if (cc !== undefined) {
    for (const part of cc.split(',')) {
      const [name = '', value = ''] = part.trim().toLowerCase().split('=', 2)
      if (name.trim() === 'no-cache') return true
      if (name.trim() === 'max-age' && /^"?0+"?$/.test(value.trim())) return true
    }
    return false
  }
  const pragma = joined(headers.pragma)
  return pragma !== undefined && pragma.split(',').some(p => p.trim().toLowerCase() === 'no-cache')
}

/** Whether the request carries a validator of a copy the client already holds (If-None-Match / If-Modified-Since). */
export function clientHasCopy (headers: IncomingHttpHeaders): boolean {
  return headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined
}

function joined (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v
}
