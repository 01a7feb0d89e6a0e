import type { Dispatcher } from 'undici'
import { UpstreamProtocolError } from '../../errors.ts'
import { discardBody, readLimited, requestUpstream } from '../../upstream/request.ts'
import type { RawHeaders } from '../../upstream/request.ts'

/** The upstream's metadata answer for a `/resolve` URL. */
export type ProbeResult =
  /** A 2xx, or a redirect to another host (the CDN): its headers describe the file. */
  | { kind: 'file', status: number, headers: Record<string, string>, redirect: boolean, url: URL }
  /** Any other status (401 gated, 404 with X-Error-Code, 5xx): to be passed on exactly. */
  | { kind: 'refused', status: number, rawHeaders: RawHeaders, url: URL, body: Buffer }

export interface ProbeOptions {
  /** Client headers sent upstream (authorization, user-agent). */
  headers: Record<string, string>
  /** Also fetch the body of a refusal (for a client GET), up to 1 MiB. */
  withErrorBody?: boolean
  signal?: AbortSignal
}

const REDIRECT = new Set([301, 302, 303, 307, 308])
/** What the hub says about a file on its `/resolve` answer, kept from a redirect its target does not repeat. */
const HUB_HEADERS = ['x-repo-commit', 'x-linked-etag', 'x-linked-size'] as const
const MAX_HOPS = 5
const ERROR_BODY_LIMIT = 1 << 20

export function lowerHeaders (raw: RawHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    const value = raw[i + 1] as string
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`
  }
  return out
}

/**
 * HEAD on a `/resolve` URL the way huggingface_hub does it: redirects on the same host (the hub's
 * relative `/api/resolve-cache/...` redirect for files kept in git) are followed, a redirect to another
 * host (the LFS CDN's signed URL) is not, and the file's metadata is read from that answer, with the
 * hub's headers of the redirects before it where it has none.
 */
export async function probeResolve (dispatcher: Dispatcher, url: URL, options: ProbeOptions): Promise<ProbeResult> {
  const headers = { ...options.headers, 'accept-encoding': 'identity' }
  let current = url
  const hub: Record<string, string> = {}
  for (let hop = 0; ; hop++) {
    const res = await requestUpstream(dispatcher, { url: current, method: 'HEAD', headers: Object.entries(headers).flat(), signal: options.signal })
    discardBody(res.body)
    const h = lowerHeaders(res.rawHeaders)
    const location = h.location
    if (REDIRECT.has(res.statusCode) && location !== undefined) {
      let target: URL
      try { target = new URL(location, current) } catch { throw new UpstreamProtocolError('Bad redirect from upstream') }
      if (target.origin !== current.origin) return { kind: 'file', status: res.statusCode, headers: h, redirect: true, url: current }
      if (hop >= MAX_HOPS) throw new UpstreamProtocolError('Too many redirects', { detail: { url: url.origin } })
      // A server that keeps its LFS storage on its own host redirects there, and the storage's answer
      // lacks the hub's headers.
      for (const name of HUB_HEADERS) if (h[name] !== undefined) hub[name] = h[name]
      // Like huggingface_hub: the redirect's path is followed, its query (a cache-busting etag) kept.
      current = target
      continue
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return { kind: 'file', status: res.statusCode, headers: { ...hub, ...h }, redirect: false, url: current }
    if (options.withErrorBody !== true) return { kind: 'refused', status: res.statusCode, rawHeaders: res.rawHeaders, url: current, body: Buffer.alloc(0) }
    // The client asked with GET: repeat the refused request as a GET so its body is passed on too.
    const again = await requestUpstream(dispatcher, { url: current, method: 'GET', headers: Object.entries(headers).flat(), signal: options.signal })
    if (again.statusCode !== res.statusCode) {
      // The answer changed in between: keep the HEAD's refusal, without a body.
      discardBody(again.body)
      return { kind: 'refused', status: res.statusCode, rawHeaders: res.rawHeaders, url: current, body: Buffer.alloc(0) }
    }
    const body = await readLimited(again.body, ERROR_BODY_LIMIT)
    return { kind: 'refused', status: again.statusCode, rawHeaders: again.rawHeaders, url: current, body }
  }
}
