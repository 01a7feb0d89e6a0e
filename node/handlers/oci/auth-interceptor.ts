import type { Dispatcher } from 'undici'
import type { Credential, CredentialVault } from './credentials.ts'
import type { TokenScope, UpstreamTokens } from './upstream-tokens.ts'

/**
 * Registry auth for the fetch engine's downloads. A blob download runs for as long as it takes (many
 * Range requests, possibly longer than any token lives, possibly after the client that asked for it
 * left), so it cannot carry a token fixed at its start. Instead its requests carry a marker header
 * naming the upstream, the repository and the client credential (by vault key); this interceptor swaps
 * the marker for the current token on requests to that registry (none elsewhere: a CDN redirect gets no
 * credentials), and on a 401 renews the token and sends the request once more.
 */

export const AUTH_MARKER = 'x-aimirror-oci-auth'

export function authMarker (scope: TokenScope, cred: Credential | null): string {
  return `${encodeURIComponent(scope.upstream)} ${encodeURIComponent(scope.repo)} ${cred?.key ?? '-'}`
}

interface Marked { scope: TokenScope, credKey: string | null }

function parseMarker (value: string): Marked | null {
  const [u, r, c] = value.split(' ')
  if (u === undefined || r === undefined || c === undefined) return null
  return { scope: { upstream: decodeURIComponent(u), repo: decodeURIComponent(r) }, credKey: c === '-' ? null : c }
}

/** Flat `[name, value, ...]` list from any of undici's header shapes. */
function flatHeaders (headers: Dispatcher.DispatchOptions['headers']): string[] {
  const out: string[] = []
  if (headers === null || headers === undefined) return out
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [k, v] of headers as unknown as Array<[string, string]>) out.push(String(k), String(v))
    } else {
      for (const x of headers as string[]) out.push(String(x))
    }
    return out
  }
  const entries: Iterable<[string, unknown]> = Symbol.iterator in (headers as object)
    ? headers as Iterable<[string, unknown]>
    : Object.entries(headers as Record<string, unknown>)
  for (const [k, v] of entries) {
    if (v === undefined) continue
    if (Array.isArray(v)) for (const one of v) out.push(k, String(one))
    else out.push(k, String(v))
  }
  return out
}

function without (flat: readonly string[], names: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (!names.includes((flat[i] as string).toLowerCase())) out.push(flat[i] as string, flat[i + 1] as string)
  }
  return out
}

export interface AuthInterceptorComponents {
  tokens: UpstreamTokens
  vault: CredentialVault
}

/** The interceptor for `dispatcher.compose(...)`. Requests without the marker pass untouched. */
export function ociAuthInterceptor (components: AuthInterceptorComponents): Dispatcher.DispatcherComposeInterceptor {
  const { tokens, vault } = components
  return (dispatch) => (opts, handler) => {
    const flat = flatHeaders(opts.headers)
    let markerValue: string | undefined
    for (let i = 0; i + 1 < flat.length; i += 2) if ((flat[i] as string).toLowerCase() === AUTH_MARKER) markerValue = flat[i + 1]
    if (markerValue === undefined) return dispatch(opts, handler)
    const marked = parseMarker(markerValue)
    const base = without(flat, [AUTH_MARKER])
    const origin = opts.origin === undefined ? '' : new URL(String(opts.origin)).origin
    if (marked === null || origin !== new URL(marked.scope.upstream).origin) return dispatch({ ...opts, headers: base }, handler)
    const cred = marked.credKey === null ? null : (vault.get(marked.credKey) ?? null)
    const signal = (opts as { signal?: AbortSignal }).signal
    const send = (authorization: string | null, h: Dispatcher.DispatchHandler): void => {
      const headers = without(base, ['authorization'])
      if (authorization !== null) headers.push('authorization', authorization)
      dispatch({ ...opts, headers }, h)
    }
    const withToken = (h: Dispatcher.DispatchHandler, onToken: (a: string | null) => void): void => {
      tokens.authorization(marked.scope, cred, { signal }).then(onToken, (err: unknown) => {
        h.onResponseError?.(undefined as unknown as Dispatcher.DispatchController, err instanceof Error ? err : new Error(String(err)))
      })
    }
    withToken(handler, authorization => {
      send(authorization, new RenewOn401(handler, authorization, (used, challenges, retry) => {
        tokens.rejected(marked.scope, cred, used, challenges)
        withToken(handler, fresh => send(fresh, retry))
      }))
    })
    return true
  }
}

type Renew = (used: string | null, challenges: string[], retry: Dispatcher.DispatchHandler) => void

/** Passes one response through, except a first 401: that one is swallowed and the request renewed. */
class RenewOn401 implements Dispatcher.DispatchHandler {
  private readonly handler: Dispatcher.DispatchHandler
  private readonly used: string | null
  private readonly renew: Renew
  private retried = false
  private swallowing = false
  private challenges: string[] = []

  constructor (handler: Dispatcher.DispatchHandler, used: string | null, renew: Renew) {
    this.handler = handler
    this.used = used
    this.renew = renew
  }

  onRequestStart (controller: Dispatcher.DispatchController, context: unknown): void {
    this.handler.onRequestStart?.(controller, context)
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (statusCode === 401 && !this.retried) {
      this.swallowing = true
      const v = headers['www-authenticate']
      this.challenges = v === undefined ? [] : Array.isArray(v) ? v : [v]
      return
    }
    this.handler.onResponseStart?.(controller, statusCode, headers, statusMessage)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.swallowing) this.handler.onResponseData?.(controller, chunk)
  }

  onResponseEnd (controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (!this.swallowing) {
      this.handler.onResponseEnd?.(controller, trailers)
      return
    }
    this.swallowing = false
    this.retried = true
    this.renew(this.used, this.challenges, this)
  }

  onResponseError (controller: Dispatcher.DispatchController, error: Error): void {
    this.handler.onResponseError?.(controller, error)
  }
}
