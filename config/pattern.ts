/**
 * Rule patterns: seed files carry Python regular expressions. The ones people write for URL paths are
 * plain enough that a few syntax translations make them valid JavaScript with the same meaning.
 * The router compiles `rule.pattern` with `compileRulePattern` (no flags), so config and router agree.
 */

/** Python-only syntax → JavaScript: `(?P<n>` → `(?<n>`, `(?P=n)` → `\k<n>`, `\A` → `^`, `\Z` → `$`, leading `(?ims)`. */
export function translatePythonRegex (source: string): string {
  let out = ''
  let inClass = false
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]
    if (ch === '\\') {
      const next = source[i + 1] ?? ''
      if (!inClass && next === 'A') out += '^'
      else if (!inClass && next === 'Z') out += '$'
      else out += ch + next
      i++
      continue
    }
    if (inClass) {
      if (ch === ']') inClass = false
      out += ch
      continue
    }
    if (ch === '[') {
      inClass = true
      out += ch
      // A `]` right after `[` or `[^` is a literal in both dialects.
      if (source[i + 1] === '^') { out += '^'; i++ }
      if (source[i + 1] === ']') { out += ']'; i++ }
      continue
    }
    if (source.startsWith('(?P<', i)) { out += '(?<'; i += 3; continue }
    const backref = /^\(\?P=(\w+)\)/.exec(source.slice(i))
    if (backref !== null) { out += `\\k<${backref[1] ?? ''}>`; i += backref[0].length - 1; continue }
    out += ch
  }
  // Python's global inline flags must lead the pattern; JavaScript only has scoped modifiers.
  const flags = /^\(\?([ims]+)\)/.exec(out)
  if (flags !== null) out = `(?${flags[1] ?? ''}:${out.slice(flags[0].length)})`
  return out
}

/** Compiles a (translated) rule pattern exactly as the router does. Throws SyntaxError when invalid. */
export function compileRulePattern (pattern: string): RegExp {
  return new RegExp(pattern)
}
