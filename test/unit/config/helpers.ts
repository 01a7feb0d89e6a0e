import { expect } from 'vitest'
import { ConfigError } from '../../../config/errors.ts'

/** Runs fn, expects a ConfigError, returns its problem lines. */
export function problemsOf (fn: () => unknown): readonly string[] {
  let caught: unknown
  try { fn() } catch (err) { caught = err }
  expect(caught).toBeInstanceOf(ConfigError)
  const err = caught as ConfigError
  expect(err.code).toBe('ERR_CONFIG')
  return err.problems
}

/** The one problem whose location is exactly `where` (the text before the first ": "). */
export function problemAt (problems: readonly string[], where: string): string {
  const found = problems.filter((p) => p.startsWith(`${where}: `))
  expect(found, `expected one problem at ${where} in:\n${problems.join('\n')}`).toHaveLength(1)
  return found[0] ?? ''
}

export const FIXTURES = new URL('../../fixtures/config/', import.meta.url)

export function fixture (name: string): string {
  return new URL(name, FIXTURES).pathname
}

/** A minimal valid rule, to be spread and varied. */
export const RULE = { name: 'r', path_prefix: '/r/', upstream: 'https://example.com' }
