import type { LRUCache } from 'lru-cache'
import { lruCache } from '../../lru.ts'
import type { Dispatcher } from 'undici'
import { UpstreamDeniedError, UpstreamProtocolError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { discardBody, headerValues, requestUpstream } from '../../upstream/request.ts'
import { parseChallenges } from './challenge.ts'
import type { Credential } from './credentials.ts'
import { deadline, readSmall, waitFor } from './io.ts'

/** How a registry wants to be authenticated, learnt from its `/v2/` answer. */
export type AuthScheme =
  | { readonly kind: 'none' }
  | { readonly kind: 'basic' }
  | { readonly kind: 'bearer', readonly realm: string, readonly service: string | null }

/** What a token is for: pulling one repository of one upstream. */
export interface TokenScope {
  readonly upstream: string
  readonly repo: string
}

export interface UpstreamTokensInit {
  /** A scheme learnt from `/v2/` is trusted this long. Default 1 h. */
  schemeTtlMs?: number
  /** Deadline of one token or `/v2/` exchange. Default 30 s. */
  timeoutMs?: number
  /** Most tokens kept. Default 10 000. */
  maxTokens?: number
  now?: () => number
}

interface CachedToken { readonly authorization: string, readonly obtainedAt: number, readonly expiresAt: number }

const TOKEN_BODY_LIMIT = 1 << 20
/** Registries' default token lifetime when `expires_in` is absent (distribution token spec). */
const DEFAULT_LIFETIME_S = 60

/**
 * The mirror's own upstream credentials: per registry the auth scheme (from its `/v2/` challenge), per
 * (upstream, repository, client credential) a Bearer token from the registry's real realm, fetched
 * anonymously or with the client's Basic credentials, cached until shortly before it expires and fetched
 * again after. One exchange per key at a time. Tokens never leave this object except as request headers.
 */
export class UpstreamTokens {
  private readonly dispatcher: Dispatcher
  private readonly log: Logger
  private readonly schemeTtlMs: number
  private readonly timeoutMs: number
  private readonly now: () => number
  private readonly schemes = new Map<string, { scheme: AuthScheme, at: number }>()
  // No ttl: `usable` renews a token some time before it expires, by a margin that depends on its lifetime.
  private readonly tokens: LRUCache<string, CachedToken>
  private readonly flights = new Map<string, Promise<unknown>>()

  constructor (components: { dispatcher: Dispatcher, logger: Logger }, init: UpstreamTokensInit = {}) {
    this.dispatcher = components.dispatcher
    this.log = components.logger.child({ component: 'oci-auth' })
    this.schemeTtlMs = init.schemeTtlMs ?? 3600_000
    this.timeoutMs = init.timeoutMs ?? 30_000
    this.tokens = lruCache(init.maxTokens ?? 10_000)
    this.now = init.now ?? Date.now
  }

  /** The Authorization header value for a pull of `scope` (null: send none). */
  async authorization (scope: TokenScope, cred: Credential | null, options: { signal?: AbortSignal } = {}): Promise<string | null> {
    const scheme = await this.scheme(scope.upstream, options)
    if (scheme.kind === 'none') return null
    if (scheme.kind === 'basic') return cred?.authorization ?? null
    const key = tokenKey(scope, cred)
    const cached = this.tokens.get(key)
    if (cached !== undefined && this.usable(cached)) return cached.authorization
    const token = await this.once(`t ${key}`, async () => await this.fetchToken(scheme, scope, cred), options.signal)
    return token.authorization
  }

  /**
   * The upstream refused `authorization` (401): forget it, and the scheme with it when the registry
   * sent a new challenge or none was used, so the next call asks again.
   */
  rejected (scope: TokenScope, cred: Credential | null, authorization: string | null, challenges: readonly string[] = []): void {
    const key = tokenKey(scope, cred)
    if (authorization !== null && this.tokens.get(key)?.authorization === authorization) this.tokens.delete(key)
    const fresh = schemeFrom(challenges)
    if (fresh !== null) this.schemes.set(scope.upstream, { scheme: fresh, at: this.now() })
    else if (authorization === null) this.schemes.delete(scope.upstream)
  }

  async scheme (upstream: string, options: { signal?: AbortSignal } = {}): Promise<AuthScheme> {
    const known = this.schemes.get(upstream)
    if (known !== undefined && this.now() - known.at < this.schemeTtlMs) return known.scheme
    return await this.once(`s ${upstream}`, async () => {
      const url = new URL(upstream + '/v2/')
      const res = await requestUpstream(this.dispatcher, {
        url, method: 'GET', headers: ['accept', 'application/json'], signal: deadline(this.timeoutMs)
      })
      discardBody(res.body)
      // A registry in trouble tells nothing; one without a plain /v2/ (404) is asked without auth, and
      // a 401 on a real request teaches the scheme then.
      if (res.statusCode >= 500 || res.statusCode === 429) {
        throw new UpstreamProtocolError('Registry ping failed', { detail: { upstream: url.origin, status: res.statusCode } })
      }
      const scheme = res.statusCode === 401 ? (schemeFrom(headerValues(res.rawHeaders, 'www-authenticate')) ?? { kind: 'none' as const }) : { kind: 'none' as const }
      this.schemes.set(upstream, { scheme, at: this.now() })
      return scheme
    }, options.signal)
  }

  /**
   * Checks a login with no repository in view (`docker login`): the realm without a scope, or `/v2/`
   * for a Basic registry. Throws UpstreamDeniedError when upstream refuses the credential.
   */
  async checkLogin (upstream: string, cred: Credential, options: { signal?: AbortSignal } = {}): Promise<void> {
    const scheme = await this.scheme(upstream, options)
    if (scheme.kind === 'none') return
    const url = scheme.kind === 'bearer' ? new URL(scheme.realm) : new URL(upstream + '/v2/')
    if (scheme.kind === 'bearer' && scheme.service !== null) url.searchParams.set('service', scheme.service)
    const res = await requestUpstream(this.dispatcher, {
      url, method: 'GET', headers: ['accept', 'application/json', 'authorization', cred.authorization], signal: deadline(this.timeoutMs, options.signal)
    })
    discardBody(res.body)
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new UpstreamDeniedError('Upstream refused the credentials', { detail: { upstream: url.origin, status: res.statusCode } })
    }
  }

  private usable (t: CachedToken): boolean {
    // Renew a little before expiry: a request must not set off with a token that dies on the way.
    const margin = Math.min(30_000, (t.expiresAt - t.obtainedAt) / 5)
    return this.now() < t.expiresAt - margin
  }

  private async once<T> (key: string, work: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    let flight = this.flights.get(key) as Promise<T> | undefined
    if (flight === undefined) {
      flight = work().finally(() => this.flights.delete(key))
      flight.catch(() => {})
      this.flights.set(key, flight)
    }
    return await waitFor(flight, signal)
  }

  private async fetchToken (scheme: AuthScheme & { kind: 'bearer' }, scope: TokenScope, cred: Credential | null): Promise<CachedToken> {
    const url = new URL(scheme.realm)
    if (scheme.service !== null) url.searchParams.set('service', scheme.service)
    url.searchParams.set('scope', `repository:${scope.repo}:pull`)
    const headers = ['accept', 'application/json']
    if (cred !== null) headers.push('authorization', cred.authorization)
    const res = await requestUpstream(this.dispatcher, { url, method: 'GET', headers, signal: deadline(this.timeoutMs) })
    if (res.statusCode === 401 || res.statusCode === 403) {
      discardBody(res.body)
      throw new UpstreamDeniedError('Upstream token service refused the credentials', { detail: { upstream: url.origin, status: res.statusCode } })
    }
    if (res.statusCode !== 200) {
      discardBody(res.body)
      throw new UpstreamProtocolError('Upstream token service failed', { detail: { upstream: url.origin, status: res.statusCode } })
    }
    const body = await readSmall(res.body, TOKEN_BODY_LIMIT, url.origin)
    let doc: { token?: unknown, access_token?: unknown, expires_in?: unknown }
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc
    } catch {
      throw new UpstreamProtocolError('Upstream token response is not JSON', { detail: { upstream: url.origin } })
    }
    const token = typeof doc.token === 'string' && doc.token !== '' ? doc.token : doc.access_token
    if (typeof token !== 'string' || token === '') throw new UpstreamProtocolError('Upstream token response has no token', { detail: { upstream: url.origin } })
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : DEFAULT_LIFETIME_S
    const now = this.now()
    const cached = { authorization: `Bearer ${token}`, obtainedAt: now, expiresAt: now + lifetime * 1000 }
    const key = tokenKey(scope, cred)
    this.tokens.set(key, cached)
    this.log.debug({ upstream: scope.upstream, repo: scope.repo, anonymous: cred === null, lifetime }, 'upstream token obtained')
    return cached
  }
}

function tokenKey (scope: TokenScope, cred: Credential | null): string {
  return `${scope.upstream}\n${scope.repo}\n${cred?.key ?? ''}`
}

/** The scheme a registry's challenges ask for: Bearer (with an http(s) realm) before Basic. */
export function schemeFrom (values: readonly string[]): AuthScheme | null {
  const challenges = parseChallenges(values)
  for (const c of challenges) {
    const realm = c.params.realm
    if (c.scheme !== 'bearer' || realm === undefined || !/^https?:\/\//i.test(realm)) continue
    try {
      void new URL(realm)
    } catch {
      continue
    }
    return { kind: 'bearer', realm, service: c.params.service ?? null }
  }
  return challenges.some(c => c.scheme === 'basic') ? { kind: 'basic' } : null
}
