import { isAimirrorError } from '../../errors.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import type { Logger } from '../../log.ts'
import type { ClientTokens } from './client-tokens.ts'
import { repoKey } from './client-tokens.ts'
import { basicAuthorization } from './credentials.ts'
import type { Credential, CredentialVault } from './credentials.ts'
import { readSmall } from './io.ts'
import type { RegistryMap, RegistryTarget } from './registries.ts'
import { API_VERSION_HEADER, sendOciError } from './replies.ts'
import type { UpstreamTokens } from './upstream-tokens.ts'

export interface TokenEndpointComponents {
  registries: RegistryMap
  tokens: UpstreamTokens
  clientTokens: ClientTokens
  vault: CredentialVault
  logger: Logger
}

const FORM_LIMIT = 64 * 1024
/** Scopes honoured per token request (clients ask for one or two); each may cost an upstream check. */
const MAX_SCOPES = 16

/** Repository names of `repository:<name>:<actions>` scopes (space-separated, possibly several params). */
export function scopeNames (scopes: readonly string[]): string[] {
  const out: string[] = []
  for (const param of scopes) {
    for (const scope of param.split(' ')) {
      const first = scope.indexOf(':')
      const last = scope.lastIndexOf(':')
      if (first < 0 || last <= first) continue
      // `repository(plugin):name:pull` carries a resource class; the name may hold a port (`host:5000/x`).
      const type = scope.slice(0, first).replace(/\(.*\)$/, '')
      if (type !== 'repository') continue
      const actions = scope.slice(last + 1).split(',')
      if (!actions.includes('pull') && !actions.includes('*')) continue
      out.push(scope.slice(first + 1, last))
    }
  }
  return out
}

function basicFrom (header: string | undefined): string | null {
  if (header === undefined) return null
  return /^basic\s+\S+/i.test(header.trim()) ? header.trim() : null
}

/**
 * The realm the mirror's challenges point at (`/v2/token`). GET with optional Basic credentials (the
 * distribution token flow) or POST of an OAuth password grant (containerd's `ctr --user`); other grants
 * get 404, on which clients fall back to GET. Scopes name repositories as the client sees them; the
 * registry comes from a path prefix in the name or from `service` (which the mirror's own challenges
 * fill in). Anonymous tokens are issued without asking upstream, so clients get as far as the cache
 * while upstream is down; credentials are checked with the real realm when it answers.
 */
export function createTokenEndpoint (components: TokenEndpointComponents): (ctx: StrategyContext) => Promise<void> {
  const { registries, tokens, clientTokens, vault } = components
  const log = components.logger.child({ component: 'oci-token' })

  return async (ctx: StrategyContext): Promise<void> => {
    const { request, reply } = ctx
    const head = request.method === 'HEAD'
    let params: URLSearchParams
    let authorization: string | null
    if (request.method === 'POST') {
      params = new URLSearchParams((await readSmall(request.raw, FORM_LIMIT)).toString('utf8'))
      if (params.get('grant_type') !== 'password' || params.get('username') === null) {
        await sendOciError(reply, false, 404, 'UNSUPPORTED', 'only the password grant is supported; use GET')
        return
      }
      authorization = basicAuthorization(params.get('username') ?? '', params.get('password') ?? '')
    } else if (request.method === 'GET' || head) {
      params = new URL(request.url, 'http://mirror').searchParams
      authorization = basicFrom(request.headers.authorization)
    } else {
      await sendOciError(reply, head, 405, 'UNSUPPORTED', 'method not allowed')
      return
    }
    const service = params.get('service')
    const targets: RegistryTarget[] = []
    for (const name of scopeNames(params.getAll('scope')).slice(0, MAX_SCOPES)) {
      const t = registries.resolve(name, service, ctx.rule.upstream)
      if (t !== null) targets.push(t)
    }
    const cred: Credential | null = authorization === null ? null : vault.remember(authorization)
    if (cred !== null) {
      try {
        if (targets.length === 0) await tokens.checkLogin(registries.serviceUpstream(service, ctx.rule.upstream), cred, { signal: ctx.signal })
        for (const t of targets) await tokens.authorization({ upstream: t.upstream, repo: t.repo }, cred, { signal: ctx.signal })
      } catch (err) {
        if (isAimirrorError(err) && err.code === 'ERR_UPSTREAM_DENIED') {
          log.info({ service, scopes: targets.length }, 'upstream refused a client credential')
          await sendOciError(reply, head, 401, 'UNAUTHORIZED', 'upstream refused the credentials')
          return
        }
        if (isAimirrorError(err) && err.code === 'ERR_ABORTED') throw err
        // Upstream unreachable: issue the token anyway; private content stays behind upstream checks.
        log.warn({ err: (err as Error).message, service }, 'could not check a credential upstream')
      }
    }
    const issued = clientTokens.issue(targets.map(t => repoKey(t.upstream, t.repo)), cred)
    const body = Buffer.from(JSON.stringify({
      token: issued.token,
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: issued.expiresInS,
      issued_at: issued.issuedAt
    }))
    reply.code(200).headers({
      ...API_VERSION_HEADER,
      'content-type': 'application/json',
      'content-length': String(body.length),
      'cache-control': 'no-store'
    })
    await reply.send(head ? undefined : body)
  }
}
