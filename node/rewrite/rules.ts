import type { ContentRewrite, Rule } from '../../config/types.ts'
import type { CompiledRule } from '../router/compile.ts'
import { createLinkRewriter, linkMappings } from './link-map.ts'
import type { LinkRewriter } from './link-map.ts'

/** What link rewriting applies to responses of one rule. */
export interface RuleRewriting {
  readonly links: LinkRewriter
  /** Lower-case substrings of Content-Type whose bodies are rewritten (global ∪ rule). */
  readonly contentTypes: readonly string[]
  /** Whether a response with this Content-Type carries links to rewrite. */
  isLinkBearing: (contentType: string | undefined) => boolean
}

export interface RewritePlan {
  forRule: (rule: Rule) => RuleRewriting
}

/** Prepares, once at start, the link mappings and content types of every rule. */
export function createRewritePlan (global: ContentRewrite, rules: readonly CompiledRule[]): RewritePlan {
  const byRule = new Map<Rule, RuleRewriting>()
  for (const compiled of rules) {
    const contentTypes = [...new Set([...global.content_types, ...(compiled.rule.content_rewrite?.content_types ?? [])]
      .map((t) => t.trim().toLowerCase()).filter((t) => t !== ''))]
    byRule.set(compiled.rule, {
      links: createLinkRewriter(linkMappings(rules, compiled, global.targets)),
      contentTypes,
      isLinkBearing (contentType) {
        if (contentType === undefined) return false
        const ct = contentType.toLowerCase()
        return contentTypes.some((t) => ct.includes(t))
      }
    })
  }
  return {
    forRule (rule) {
      const found = byRule.get(rule)
      if (found === undefined) throw new Error(`rule ${rule.name} is not part of this plan`)
      return found
    }
  }
}
