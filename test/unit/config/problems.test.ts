import { describe, expect, it } from 'vitest'
import { closest, describeValue, editDistance, formatPath } from '../../../config/problems.ts'

describe('problem formatting helpers', () => {
  it('formats paths like the document', () => {
    expect(formatPath(['rules', 3, 'strategy'])).toBe('rules[3].strategy')
    expect(formatPath(['rules', 0, 'path_rewrite', 1, 'search'])).toBe('rules[0].path_rewrite[1].search')
    expect(formatPath(['server'])).toBe('server')
    expect(formatPath([])).toBe('(top level)')
  })

  it('describes found values', () => {
    expect(describeValue('80a')).toBe('"80a"')
    expect(describeValue(5)).toBe('5')
    expect(describeValue(null)).toBe('null')
    expect(describeValue(undefined)).toBe('nothing')
    expect(describeValue([1])).toBe('a list')
    expect(describeValue({ a: 1 })).toBe('a mapping')
    expect(describeValue('x'.repeat(100)).length).toBeLessThan(70)
  })

  it('measures edit distance with transpositions, ignoring case', () => {
    expect(editDistance('size', 'sizee')).toBe(1)
    expect(editDistance('paralel', 'parallel')).toBe(1)
    expect(editDistance('prot', 'port')).toBe(1)
    expect(editDistance('Port', 'port')).toBe(0)
    expect(editDistance('', 'abc')).toBe(3)
  })

  it('suggests only plausible typos', () => {
    expect(closest('sizee', ['size', 'dir'])).toBe('size')
    expect(closest('concurrrency', ['concurrency', 'chunk_size'])).toBe('concurrency')
    expect(closest('zzzzzz', ['dir', 'max_size_gb'])).toBeUndefined()
    expect(closest('a', ['b'])).toBe('b')
    expect(closest('ab', ['xy'])).toBeUndefined()
  })
})
