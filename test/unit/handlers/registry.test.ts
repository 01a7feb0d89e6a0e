import { describe, expect, it } from 'vitest'
import type { HandlerName } from '../../../config/types.ts'
import { createHandlerRegistry } from '../../../node/handlers/registry.ts'

const NAMES: HandlerName[] = ['pypi', 'oci', 'hf', 'npm', 'conda', 'cran', 'generic']

describe('handler registry', () => {
  it('resolves every name; without an implementation a handler defers to the strategy', () => {
    const registry = createHandlerRegistry()
    for (const name of NAMES) {
      const h = registry.get(name)
      expect(h.name).toBe(name)
      expect(h.handle).toBeUndefined()
    }
    expect(registry.get(null).name).toBe('generic')
  })

  it('uses supplied handlers by name', () => {
    const oci = { name: 'oci' as const, handle: async (): Promise<boolean> => true }
    const registry = createHandlerRegistry({ oci })
    expect(registry.get('oci')).toBe(oci)
    expect(registry.get('hf').handle).toBeUndefined()
  })
})
