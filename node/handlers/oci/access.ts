import type { LRUCache } from 'lru-cache'
import { lruCache } from '../../lru.ts'
import { discardBody } from '../../upstream/request.ts'
import type { Credential } from './credentials.ts'
import type { RegistryClient } from './registry-client.ts'
import type { OciState } from './state.ts'
import type { TokenScope } from './upstream-tokens.ts'

/** Who asks: the upstream credential behind the client's mirror token (null: anonymous). */
export interface Principal {
  readonly cred: Credential | null
}

export type Verdict =
  | { readonly ok: true }
  /** Upstream refused this principal (or does not have the object in that repository). */
  | { readonly ok: false, readonly status: number, readonly headers: Readonly<Record<string, string>> }

export interface AccessControlInit {
  /** How long an upstream-confirmed access is remembered. */
  rememberMs: number
  /** Most confirmations kept. Default 50 000. */
  max?: number
  now?: () => number
}

const ANONYMOUS: Principal = { cred: null }

/** Upstream headers worth relaying with a refusal. */
const RELAYED = ['www-authenticate', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'docker-ratelimit-source']

/**
 * Who may get cached bytes. Bytes upstream served anonymously are public (marked by digest, on disk):
 * anyone gets them. Anything else is served only to a client whose credential upstream accepts for that
 * object in that repository: a HEAD with the mirror's token for that credential, remembered briefly.
 * The check names the object, not just the repository, so a client with access to one repository cannot
 * read another one's private blob by asking for its digest under its own repository.
 */
export class AccessControl {
  private readonly state: OciState
  private readonly client: RegistryClient
  private readonly rememberMs: number
  private readonly now: () => number
  // Until when each confirmation stands, by `now`: lru-cache's ttl takes a clock reading of 0 for
  // "never expires" and reads its clock at most once a millisecond, which an injected `now` does not suit.
  private readonly confirmed: LRUCache<string, number>
  /** Until when an anonymous check's no stands (see isPublic). */
  private readonly notPublic: LRUCache<string, number>

  constructor (components: { state: OciState, client: RegistryClient }, init: AccessControlInit) {
    this.state = components.state
    this.client = components.client
    this.rememberMs = init.rememberMs
    this.confirmed = lruCache(init.max ?? 50_000)
    this.notPublic = lruCache(init.max ?? 50_000)
    this.now = init.now ?? Date.now
  }

  /** Throws the upstream's catalogue error when it cannot be asked (and the object is not public). */
  async check (scope: TokenScope, who: Principal, kind: 'blobs' | 'manifests', digest: string,
    options: { accept?: readonly string[], signal?: AbortSignal } = {}): Promise<Verdict> {
    if (await this.state.isPublic(digest)) return { ok: true }
    const key = memoKey(scope, who, digest)
    const until = this.confirmed.get(key)
    if (until !== undefined && until > this.now()) return { ok: true }
    const res = await this.client.request({
      scope, cred: who.cred, method: 'HEAD', path: `/v2/${scope.repo}/${kind}/${digest}`, headers: options.accept, signal: options.signal
    })
    discardBody(res.body)
    // A redirect means the registry found the object and authorised us (it sends us to its storage).
    if (res.status >= 200 && res.status < 400) {
      await this.confirm(scope, who, digest)
      return { ok: true }
    }
    const headers: Record<string, string> = {}
    for (const name of RELAYED) if (res.headers[name] !== undefined) headers[name] = res.headers[name] as string
    return { ok: false, status: res.status, headers }
  }

  /** Whether `digest` is known to be anyone's (upstream served it to an anonymous client). */
  async knownPublic (digest: string): Promise<boolean> {
    return await this.state.isPublic(digest)
  }

  /**
   * Whether anyone may have `digest` (from that repository): known so, or upstream's yes to an anonymous
   * check now. Not when upstream cannot be asked.
   */
  async isPublic (scope: TokenScope, kind: 'blobs' | 'manifests', digest: string, signal?: AbortSignal): Promise<boolean> {
    if (await this.knownPublic(digest)) return true
    const key = memoKey(scope, ANONYMOUS, digest)
    const until = this.notPublic.get(key)
    if (until !== undefined && until > this.now()) return false
    const ok = await this.check(scope, ANONYMOUS, kind, digest, { signal }).then(v => v.ok, () => false)
    // A no is remembered as long as a yes to a credential is: each pull of a private image would ask again.
    if (!ok) this.notPublic.set(key, this.now() + this.rememberMs)
    return ok
  }

  /** Upstream just served `digest` from that repository to this principal (e.g. a tag HEAD answered with it). */
  async confirm (scope: TokenScope, who: Principal, digest: string): Promise<void> {
    if (who.cred === null) {
      await this.state.markPublic(digest)
      return
    }
    const key = memoKey(scope, who, digest)
    this.confirmed.set(key, this.now() + this.rememberMs)
  }
}

function memoKey (scope: TokenScope, who: Principal, digest: string): string {
  return `${who.cred?.key ?? '-'}\n${scope.upstream}\n${scope.repo}\n${digest}`
}
