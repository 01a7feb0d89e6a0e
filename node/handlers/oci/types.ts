import type { StrategyContext } from '../../http/strategy.ts'
import type { Principal } from './access.ts'
import type { RegistryTarget } from './registries.ts'
import type { Refusal } from './replies.ts'
import type { TokenScope } from './upstream-tokens.ts'

/** One authenticated API request, resolved to its registry and repository. */
export interface OciRequest {
  readonly ctx: StrategyContext
  readonly target: RegistryTarget
  /** `{ upstream, repo }` of the target: what upstream tokens and checks are for. */
  readonly scope: TokenScope
  readonly who: Principal
  /** The client's Accept lines, `['accept', value, ...]`. */
  readonly accept: readonly string[]
  readonly head: boolean
}

/** A server answers the request itself (null) or hands back upstream's refusal for the handler to relay. */
export type Served = Refusal | null
