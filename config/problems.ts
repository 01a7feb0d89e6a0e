/**
 * Turns validation issues into one line per problem: where (`rules[3].strategy`, or the env var / flag that
 * set it), what was expected, what was found, and a "did you mean" when a typo is likely.
 */
import type { z } from 'zod'
import { KNOWN_KEYS } from './schema.ts'

export type IssuePath = readonly PropertyKey[]

/** `['rules', 3, 'strategy']` → `rules[3].strategy`. */
export function formatPath (path: IssuePath): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? String(part) : `.${String(part)}`
  }
  return out === '' ? '(top level)' : out
}

/** How a found value is shown: strings quoted (and shortened), containers by kind. */
export function describeValue (value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value
    return JSON.stringify(shown)
  }
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return String(value)
}

/** Damerau–Levenshtein (optimal string alignment) distance, case-insensitive. */
export function editDistance (a: string, b: string): number {
  const s = a.toLowerCase()
  const t = b.toLowerCase()
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) => Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity
  for (let i = 1; i <= s.length; i++) {
    const row = d[i] ?? []
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      row[j] = best
    }
  }
  return at(s.length, t.length)
}

/** The closest candidate when it is plausibly a typo of `word`, else undefined. */
export function closest (word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate)
    if (distance < bestDistance) { best = candidate; bestDistance = distance }
  }
  const limit = Math.max(1, Math.floor(Math.max(word.length, 3) / 3))
  return bestDistance <= limit ? best : undefined
}

function knownKeysAt (path: IssuePath): readonly string[] | undefined {
  const key = path.map((p) => (typeof p === 'number' ? '[]' : `.${String(p)}`)).join('').replace(/^\./, '')
  return KNOWN_KEYS[key]
}

function unknownKeyProblem (path: IssuePath, key: string): string {
  const known = knownKeysAt(path) ?? []
  const guess = closest(key, known)
  const hint = guess !== undefined
    ? `did you mean "${guess}"?`
    : known.length > 0 ? `expected one of: ${known.join(', ')}` : 'not allowed here'
  return `${formatPath([...path, key])}: unknown key (${hint})`
}

/** Where a value came from when it was not the file: the env var or flag that set it. */
export type SourceOf = (path: IssuePath) => string | undefined

/** One line per problem, in document order of the issues; duplicates at the same place are dropped. */
export function issuesToProblems (issues: readonly z.core.$ZodIssue[], sourceOf: SourceOf = () => undefined): string[] {
  const problems: string[] = []
  const seenPaths = new Set<string>()
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(unknownKeyProblem(issue.path, key))
      continue
    }
    const where = formatPath(issue.path)
    if (seenPaths.has(where)) continue
    seenPaths.add(where)
    const label = sourceOf(issue.path) ?? where
    const hasInput = 'input' in issue
    const input: unknown = hasInput ? issue.input : undefined
    let line = issue.message
    if (line.startsWith('expected')) {
      if (hasInput && input === undefined && issue.code === 'invalid_type') line = `missing; ${line}`
      else if (hasInput) line = `${line}, got ${describeValue(input)}`
    }
    if (issue.code === 'invalid_value' && typeof input === 'string') {
      const guess = closest(input, issue.values.map(String))
      if (guess !== undefined) line += ` (did you mean "${guess}"?)`
    }
    problems.push(`${label}: ${line}`)
  }
  return problems
}
