import type { Principal } from './access.ts'
import type { ClientTokens } from './client-tokens.ts'
import { repoKey } from './client-tokens.ts'
import type { RegistryTarget } from './registries.ts'

export type Authentication =
  | { readonly kind: 'ok', readonly who: Principal }
  /** Answer 401 with the mirror's challenge (the client fetches a token and comes back). */
  | { readonly kind: 'challenge', readonly error?: 'invalid_token' | 'insufficient_scope' }

function bearer (header: string | undefined): string | null {
  const m = header === undefined ? null : /^bearer\s+(\S+)\s*$/i.exec(header)
  return m === null ? null : m[1] as string
}

/**
 * The principal behind a request: the grant of the mirror token it carries, if that grant covers the
 * repository. No token, an unknown or expired one, or one for other repositories gets a challenge, as
 * a registry would answer, so clients with credentials present them at the mirror's token endpoint.
 * `target` null checks only that the token is valid (the `/v2/` ping).
 */
export function authenticate (authorization: string | undefined, tokens: ClientTokens, target: RegistryTarget | null): Authentication {
  const token = bearer(authorization)
  if (token === null) return { kind: 'challenge' }
  const grant = tokens.lookup(token)
  if (grant === null) return { kind: 'challenge', error: 'invalid_token' }
  if (target !== null && !grant.repos.has(repoKey(target.upstream, target.repo))) return { kind: 'challenge', error: 'insufficient_scope' }
  return { kind: 'ok', who: { cred: grant.cred } }
}
