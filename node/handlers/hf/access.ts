import { createHash } from 'node:crypto'
import type { LRUCache } from 'lru-cache'
import { lruCache } from '../../lru.ts'
import { repoKey } from './paths.ts'
import type { RepoRef } from './paths.ts'

export interface AccessMemoryInit {
  /** How long an upstream "yes" for (credential, repository) is trusted. Default 60 s. */
  ttlMs?: number
  /** Most pairs remembered. Default 10 000. */
  maxEntries?: number
  now?: () => number
}

/**
 * A credential as an opaque scope id: a hash of the `Authorization` value, so the token itself is never
 * kept, logged or compared. null when the client sent none.
 */
export function credentialScope (authorization: string | undefined): string | null {
  if (authorization === undefined || authorization.trim() === '') return null
  return createHash('sha256').update('hf-credential\n' + authorization).digest('hex').slice(0, 32)
}

/**
 * Which credentials upstream accepted for which repositories, remembered briefly. Content learned with
 * a credential is served from the cache to a client only while upstream's "yes" for that client's
 * credential and that repository is remembered; otherwise the handler asks upstream again.
 */
export class AccessMemory {
  private readonly ttlMs: number
  private readonly now: () => number
  // Until when each yes stands, by `now`: lru-cache's ttl takes a clock reading of 0 for "never expires",
  // reads its clock at most once a millisecond and still holds an entry exactly ttlMs old.
  private readonly granted: LRUCache<string, number>

  constructor (init: AccessMemoryInit = {}) {
    this.ttlMs = init.ttlMs ?? 60_000
    this.granted = lruCache(init.maxEntries ?? 10_000)
    this.now = init.now ?? Date.now
  }

  allowed (scope: string | null, repo: RepoRef): boolean {
    if (scope === null) return false
    const key = `${scope}|${repoKey(repo)}`
    const until = this.granted.get(key)
    if (until === undefined) return false
    if (until <= this.now()) {
      this.granted.delete(key)
      return false
    }
    return true
  }

  grant (scope: string | null, repo: RepoRef): void {
    if (scope === null) return
    const key = `${scope}|${repoKey(repo)}`
    this.granted.set(key, this.now() + this.ttlMs)
  }

  /** Upstream refused the credential: forget any earlier yes. */
  revoke (scope: string | null, repo: RepoRef): void {
    if (scope !== null) this.granted.delete(`${scope}|${repoKey(repo)}`)
  }
}
