import type { HandlerName } from '../../config/types.ts'
import type { StrategyContext } from '../http/strategy.ts'

/**
 * An ecosystem handler (pypi, oci, hf, npm, conda, cran, generic). The server calls `handle` before the
 * rule's strategy; it returns true when it answered the request itself, false to let the strategy serve
 * it. Handlers without `handle` always defer to the strategy.
 */
export interface Handler {
  readonly name: HandlerName
  handle?: (ctx: StrategyContext) => Promise<boolean>
}
