import { createHmac, randomBytes } from 'node:crypto'

/** A client's registry credentials, as the mirror holds them (in memory only, never logged or stored). */
export interface Credential {
  /** Stable within this process, unguessable outside it (HMAC under a per-process secret). */
  readonly key: string
  /** `Basic ...`, sent to the upstream token realm (or to a Basic-auth registry). */
  readonly authorization: string
}

export interface CredentialVaultInit {
  /** Credentials unused for this long are forgotten. Default 24 h. */
  idleMs?: number
  /** At most this many are kept. Default 10 000. */
  max?: number
  now?: () => number
}

export function basicAuthorization (username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64')
}

/**
 * Client credentials the mirror needs later: to refresh upstream tokens during its own long downloads
 * and to check a client's access to private content. Keyed by an HMAC, so the key can name a cache
 * entry or a download without revealing (or allowing an offline guess of) the secret.
 */
export class CredentialVault {
  private readonly secret = randomBytes(32)
  private readonly entries = new Map<string, { authorization: string, lastUsed: number }>()
  private readonly idleMs: number
  private readonly max: number
  private readonly now: () => number

  constructor (init: CredentialVaultInit = {}) {
    this.idleMs = init.idleMs ?? 24 * 3600_000
    this.max = init.max ?? 10_000
    this.now = init.now ?? Date.now
  }

  keyOf (authorization: string): string {
    return createHmac('sha256', this.secret).update(authorization).digest('hex').slice(0, 32)
  }

  remember (authorization: string): Credential {
    const key = this.keyOf(authorization)
    this.entries.delete(key)
    this.entries.set(key, { authorization, lastUsed: this.now() })
    this.sweep()
    return { key, authorization }
  }

  get (key: string): Credential | undefined {
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    if (this.now() - e.lastUsed > this.idleMs) {
      this.entries.delete(key)
      return undefined
    }
    e.lastUsed = this.now()
    return { key, authorization: e.authorization }
  }

  private sweep (): void {
    const now = this.now()
    // Map order is insertion order and `remember` re-inserts: the oldest come first.
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.max && now - e.lastUsed <= this.idleMs) break
      this.entries.delete(key)
    }
  }
}
