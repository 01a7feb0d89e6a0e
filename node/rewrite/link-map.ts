import type { CompiledRule } from '../router/compile.ts'

/** Upstream URLs starting with `from` are served by the mirror under `mirrorPath` (a path prefix, '' = root). */
export interface LinkMapping {
  readonly from: string
  readonly mirrorPath: string
}

function normalise (target: string): string | null {
  try {
    const url = new URL(target)
    return url.origin + url.pathname.replace(/\/+$/, '')
  } catch {
    return null
  }
}

/** Where the mirror mounts rule `r`'s upstream base: its prefix when it strips it, else the root. */
function mountPath (r: CompiledRule): string {
  return r.prefix !== null && r.rule.strip_prefix ? r.prefix.replace(/\/+$/, '') : ''
}

/**
 * The mappings used when rewriting responses served by `current`: every target (global and rule
 * `content_rewrite.targets`, plus the rule's own upstream base and origin) goes to the mirror. Where a
 * rule mounts a target (or a base URL below it) under a stripped path prefix, links keep that prefix, so
 * `https://registry.npmjs.org/x` becomes `<mirror>/npm/x` when `/npm/` → registry.npmjs.org. The
 * current rule wins when several rules mount the same upstream, then the first in order. Longest first.
 */
export function linkMappings (rules: readonly CompiledRule[], current: CompiledRule, globalTargets: readonly string[]): LinkMapping[] {
  const targets = [...globalTargets, ...(current.rule.content_rewrite?.targets ?? []), current.upstreamBase, current.upstreamOrigin]
  const ordered = [current, ...rules.filter((r) => r !== current)]
  const byFrom = new Map<string, string>()
  for (const raw of targets) {
    const target = normalise(raw)
    if (target === null) continue
    for (const r of ordered) {
      const under = r.upstreamBase === target || r.upstreamBase.startsWith(target + '/')
      if (under && !byFrom.has(r.upstreamBase)) byFrom.set(r.upstreamBase, mountPath(r))
    }
    if (!byFrom.has(target)) byFrom.set(target, '')
  }
  return [...byFrom].map(([from, mirrorPath]) => ({ from, mirrorPath }))
    .sort((a, b) => b.from.length - a.from.length)
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

/** Replaces mapped URL prefixes in text (HTML, JSON, also JSON with `\/`-escaped slashes) and single URLs. */
export interface LinkRewriter {
  readonly mappings: readonly LinkMapping[]
  /** Rewrites every mapped absolute URL in `text` to `base` + mount path. Text is treated as bytes (latin1 is fine). */
  rewriteText: (text: string, base: string) => string
  /** Maps one URL (resolved against `relativeTo` when relative) to the mirror, or returns null if unmapped. */
  rewriteUrl: (href: string, relativeTo: URL, base: string) => string | null
  /** Rewrites each `<uri-reference>` of a `Link` header that maps to the mirror. */
  rewriteLinkHeader: (value: string, relativeTo: URL, base: string) => string
  /** `rewriteText` for a text that arrives in pieces: the pieces' outputs join to `rewriteText` of the whole. */
  textRuns: (base: string) => TextRuns
}

export interface TextRuns {
  /** The next piece; returns the text rewritten so far (a URL that may go on in the next piece is held). */
  push: (piece: string) => string
  /** The end of the text: what was held, rewritten. */
  end: () => string
}

export function createLinkRewriter (mappings: readonly LinkMapping[]): LinkRewriter {
  const forms: Array<{ text: string, mirrorPath: string, escaped: boolean }> = []
  for (const m of mappings) {
    forms.push({ text: m.from, mirrorPath: m.mirrorPath, escaped: false })
    forms.push({ text: m.from.replace(/\//g, '\\/'), mirrorPath: m.mirrorPath, escaped: true })
  }
  forms.sort((a, b) => b.text.length - a.text.length)
  const lookup = new Map(forms.map((f) => [f.text, f]))
  // A mapped prefix must end where the URL's authority or path segment ends: not `pypi.org.evil` or `/conda-forge2`.
  const re = forms.length === 0
    ? null
    : new RegExp(`(?:${forms.map((f) => escapeRegExp(f.text)).join('|')})(?![\\w.~%:@-])`, 'g')

  // A match may start this close to the end of what has arrived and still go on (its lookahead included).
  const reach = Math.max(0, ...forms.map(f => f.text.length)) + 1
  const replacement = (match: string, base: string): string => {
    const form = lookup.get(match)
    if (form === undefined) return match
    const to = base + form.mirrorPath
    return form.escaped ? to.replace(/\//g, '\\/') : to
  }

  const rewriteUrl = (href: string, relativeTo: URL, base: string): string | null => {
    let url: URL
    try { url = new URL(href, relativeTo) } catch { return null }
    const abs = url.href
    for (const m of mappings) {
      if (abs === m.from || abs.startsWith(m.from + '/') || abs.startsWith(m.from + '?')) {
        return base + m.mirrorPath + abs.slice(m.from.length)
      }
    }
    return null
  }

  return {
    mappings,
    rewriteText (text, base) {
      if (re === null) return text
      return text.replace(re, (match) => replacement(match, base))
    },
    textRuns (base) {
      let held = ''
      return {
        push (piece) {
          const text = held + piece
          if (re === null) { held = ''; return text }
          // Matches starting before `cut` are decided by what is here; later ones wait for more.
          const cut = Math.max(0, text.length - reach)
          let out = ''
          let at = 0
          re.lastIndex = 0
          for (let m = re.exec(text); m !== null && m.index < cut; m = re.exec(text)) {
            out += text.slice(at, m.index) + replacement(m[0], base)
            at = m.index + m[0].length
          }
          const emitTo = Math.max(at, cut)
          held = text.slice(emitTo)
          return out + text.slice(at, emitTo)
        },
        end () {
          const text = held
          held = ''
          return re === null ? text : text.replace(re, (match) => replacement(match, base))
        }
      }
    },
    rewriteUrl,
    rewriteLinkHeader (value, relativeTo, base) {
      return value.replace(/<([^>]*)>/g, (whole, ref: string) => {
        const mapped = rewriteUrl(ref, relativeTo, base)
        return mapped === null ? whole : `<${mapped}>`
      })
    }
  }
}
