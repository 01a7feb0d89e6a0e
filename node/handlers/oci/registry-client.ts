import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { discardBody, headerValues, requestUpstream } from '../../upstream/request.ts'
import type { Credential } from './credentials.ts'
import { headerMap } from './io.ts'
import type { TokenScope, UpstreamTokens } from './upstream-tokens.ts'

export interface RegistryRequest {
  readonly scope: TokenScope
  readonly cred: Credential | null
  readonly method: 'GET' | 'HEAD'
  /** Path and query under the upstream base (`/v2/<repo>/manifests/<ref>`). */
  readonly path: string
  /** Extra request header lines `[name, value, ...]` (every `Accept` line of the client, kept apart). */
  readonly headers?: readonly string[]
  readonly signal?: AbortSignal
}

export interface RegistryResponse {
  readonly status: number
  readonly rawHeaders: readonly string[]
  /** Lower-case names; repeated lines joined. */
  readonly headers: Readonly<Record<string, string>>
  /** Raw bytes; the caller reads or discards it. */
  readonly body: Readable
  /** The URL that answered (redirects are not followed). */
  readonly url: URL
}

export const USER_AGENT = 'aimirror/0.1 (+registry mirror)'

/**
 * Requests to a registry's API with the mirror's own token for the repository. A 401 drops the token
 * (and relearns the challenge) and the request is sent once more with a fresh one, which is how a token
 * that expired between two requests is renewed. Redirects come back as they are.
 */
export class RegistryClient {
  private readonly dispatcher: Dispatcher
  private readonly tokens: UpstreamTokens

  constructor (components: { dispatcher: Dispatcher, tokens: UpstreamTokens }) {
    this.dispatcher = components.dispatcher
    this.tokens = components.tokens
  }

  async request (req: RegistryRequest): Promise<RegistryResponse> {
    for (let attempt = 0; ; attempt++) {
      const authorization = await this.tokens.authorization(req.scope, req.cred, { signal: req.signal })
      const url = new URL(req.scope.upstream + req.path)
      const headers = ['user-agent', USER_AGENT, 'accept-encoding', 'identity', ...(req.headers ?? [])]
      if (authorization !== null) headers.push('authorization', authorization)
      const res = await requestUpstream(this.dispatcher, { url, method: req.method, headers, signal: req.signal })
      if (res.statusCode === 401 && attempt === 0) {
        discardBody(res.body)
        this.tokens.rejected(req.scope, req.cred, authorization, headerValues(res.rawHeaders, 'www-authenticate'))
        continue
      }
      return { status: res.statusCode, rawHeaders: res.rawHeaders, headers: headerMap(res.rawHeaders), body: res.body, url }
    }
  }
}
