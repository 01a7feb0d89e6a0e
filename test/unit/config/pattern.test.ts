import { describe, expect, it } from 'vitest'
import { compileRulePattern, translatePythonRegex } from '../../../config/pattern.ts'

describe('translatePythonRegex', () => {
  it.each([
    ['/v2/.*/blobs/sha256:[a-f0-9]+', '/v2/.*/blobs/sha256:[a-f0-9]+'],
    ['/packages/.+\\.(whl|tar\\.gz|zip)$', '/packages/.+\\.(whl|tar\\.gz|zip)$'],
    ['^/(?P<org>[^/]+)/(?P<repo>[^/]+)/resolve/', '^/(?<org>[^/]+)/(?<repo>[^/]+)/resolve/'],
    ['^/(?P<a>x)-(?P=a)$', '^/(?<a>x)-\\k<a>$'],
    ['\\A/simple/.*\\Z', '^/simple/.*$'],
    ['(?i)/Simple/', '(?i:/Simple/)'],
    ['[\\A(?P<x>]', '[\\A(?P<x>]'],
    ['[]a]\\Z', '[]a]$']
  ])('%s → %s', (python, js) => {
    expect(translatePythonRegex(python)).toBe(js)
    expect(() => compileRulePattern(js)).not.toThrow()
  })

  it('keeps named groups and case-insensitivity working', () => {
    const re = compileRulePattern(translatePythonRegex('(?i)^/(?P<name>[a-z]+)/'))
    expect(re.exec('/ABC/x')?.groups?.name).toBe('ABC')
  })
})
