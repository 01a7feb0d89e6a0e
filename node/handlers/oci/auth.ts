import type { Dispatcher } from 'undici'
import type { Logger } from '../../log.ts'
import { ociAuthInterceptor } from './auth-interceptor.ts'
import { CredentialVault } from './credentials.ts'
import { UpstreamTokens } from './upstream-tokens.ts'

/**
 * The registry credentials side of a node, built before the fetch engine: the engine's upstream
 * requests go through `interceptor` (compose it onto the engine's dispatcher), and the OCI handler
 * uses the same tokens and vault.
 */
export interface OciAuth {
  readonly tokens: UpstreamTokens
  readonly vault: CredentialVault
  readonly interceptor: Dispatcher.DispatcherComposeInterceptor
}

export function createOciAuth (components: { dispatcher: Dispatcher, logger: Logger }): OciAuth {
  const tokens = new UpstreamTokens(components)
  const vault = new CredentialVault()
  return { tokens, vault, interceptor: ociAuthInterceptor({ tokens, vault }) }
}
