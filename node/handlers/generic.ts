import type { HandlerName } from '../../config/types.ts'
import type { Handler } from './types.ts'

/** Plain HTTP downloads: nothing special, the rule's strategy serves the request. */
export function createGenericHandler (name: HandlerName = 'generic'): Handler {
  return { name }
}
