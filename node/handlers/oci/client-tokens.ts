import { randomBytes } from 'node:crypto'
import type { Credential } from './credentials.ts'

/** What a token the mirror issued lets its bearer do: pull these repositories, as this credential. */
export interface Grant {
  /** `registryKey(upstream, repo)` of every repository granted. */
  readonly repos: ReadonlySet<string>
  /** The client's upstream credential (null: anonymous). */
  readonly cred: Credential | null
  readonly expiresAt: number
}

export interface ClientTokensInit {
  /** Lifetime of issued tokens. Clients treat anything under 60 s as 60 s, so it is never less. */
  ttlMs: number
  /** Most live tokens kept. Default 50 000. */
  max?: number
  now?: () => number
}

export function repoKey (upstream: string, repo: string): string {
  return `${upstream}\n${repo}`
}

/** The smallest token lifetime clients honour (skopeo and dockerd round shorter ones up to 60 s). */
export const MIN_CLIENT_TOKEN_S = 60

/**
 * Opaque Bearer tokens the mirror's token endpoint hands to clients. They live in memory only: after a
 * restart a client gets a 401 with a fresh challenge and asks again. The mirror's own upstream tokens
 * are separate (and renewed by the mirror), so a client's token never has to outlive an upstream one.
 */
export class ClientTokens {
  readonly ttlMs: number
  private readonly max: number
  private readonly now: () => number
  private readonly grants = new Map<string, Grant>()

  constructor (init: ClientTokensInit) {
    this.ttlMs = Math.max(init.ttlMs, MIN_CLIENT_TOKEN_S * 1000)
    this.max = init.max ?? 50_000
    this.now = init.now ?? Date.now
  }

  issue (repos: Iterable<string>, cred: Credential | null): { token: string, expiresInS: number, issuedAt: string } {
    const token = randomBytes(32).toString('base64url')
    const now = this.now()
    this.grants.set(token, { repos: new Set(repos), cred, expiresAt: now + this.ttlMs })
    this.sweep(now)
    return { token, expiresInS: Math.floor(this.ttlMs / 1000), issuedAt: new Date(now).toISOString() }
  }

  /** The grant behind a Bearer token; null when unknown or expired. */
  lookup (token: string): Grant | null {
    const g = this.grants.get(token)
    if (g === undefined) return null
    if (this.now() >= g.expiresAt) {
      this.grants.delete(token)
      return null
    }
    return g
  }

  private sweep (now: number): void {
    // Insertion order is expiry order (one lifetime for all): expired ones come first.
    for (const [token, g] of this.grants) {
      if (this.grants.size <= this.max && g.expiresAt > now) break
      this.grants.delete(token)
    }
  }
}
