import type { HandlerName } from '../../config/types.ts'
import { createGenericHandler } from './generic.ts'
import type { Handler } from './types.ts'

export type { Handler } from './types.ts'

export interface HandlerRegistry {
  /** The handler for a rule's `handler` field; null (none configured) is the generic handler. */
  get: (name: HandlerName | null) => Handler
}

const NAMES: readonly HandlerName[] = ['pypi', 'oci', 'hf', 'npm', 'conda', 'cran', 'generic']

/**
 * Maps handler names to handlers. Every name resolves: ecosystems without a dedicated handler behave
 * like `generic` (pass to the strategy). `handlers` supplies or replaces implementations by name.
 */
export function createHandlerRegistry (handlers: Partial<Record<HandlerName, Handler>> = {}): HandlerRegistry {
  const table = new Map<HandlerName, Handler>()
  for (const name of NAMES) table.set(name, handlers[name] ?? createGenericHandler(name))
  const generic = table.get('generic') ?? createGenericHandler()
  return {
    get (name) {
      return table.get(name ?? 'generic') ?? generic
    }
  }
}
