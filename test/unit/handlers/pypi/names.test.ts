import { describe, expect, it } from 'vitest'
import { canonicalProjectPath, classifyPath, normalizeName, sha256FromAttr, sha256FromFragment } from '../../../../node/handlers/pypi/names.ts'
import { chooseFormat } from '../../../../node/handlers/pypi/negotiate.ts'
import { pieceSizeFor } from '../../../../node/handlers/pypi/files.ts'

const HEX = 'ab'.repeat(32)

describe('PyPI names and paths', () => {
  it.each([
    ['Django', 'django'], ['zope.interface', 'zope-interface'], ['Foo__Bar-.baz', 'foo-bar-baz'], ['a_b', 'a-b']
  ])('normalizes %s to %s', (name, normal) => {
    expect(normalizeName(name)).toBe(normal)
  })

  it.each([
    ['/packages/ab/cd/x-1.0-py3-none-any.whl', 'file'],
    ['/packages/ab/cd/x-1.0.tar.gz', 'file'],
    ['/pytorch/whl/cu121/torch-2.1.0%2Bcu121-cp311-cp311-linux_x86_64.whl', 'file'],
    ['/packages/ab/x-1.0-py3-none-any.whl.metadata', 'core-metadata'],
    ['/pypi/requests/json', 'json-api'],
    ['/pypi/requests/2.31.0/json', 'json-api'],
    ['/simple/requests/', 'index'],
    ['/pytorch/whl/cu121/', 'index'],
    ['/simple/foo.metadata/', 'index']
  ])('classifies %s as %s', (path, kind) => {
    expect(classifyPath(path)).toBe(kind)
  })

  it.each([
    ['/simple/Django/', '/simple/django/'],
    ['/simple/django', '/simple/django/'],
    ['/simple/zope.interface/', '/simple/zope-interface/'],
    ['/nvidia/simple/Foo_Bar', '/nvidia/simple/foo-bar/'],
    ['/simple/django/', null],
    ['/simple/', null],
    ['/simple/%zz/', null]
  ])('canonical project path of %s is %s', (path, canonical) => {
    expect(canonicalProjectPath(path)).toBe(canonical)
  })

  it('reads sha256 from fragments and PEP 658 attributes only', () => {
    expect(sha256FromFragment('#sha256=' + HEX.toUpperCase())).toBe(HEX)
    expect(sha256FromFragment('#md5=abc')).toBeNull()
    expect(sha256FromAttr('sha256=' + HEX)).toBe(HEX)
    expect(sha256FromAttr('true')).toBeNull()
    expect(sha256FromAttr(undefined)).toBeNull()
  })
})

describe('PEP 691 negotiation', () => {
  it.each([
    ['application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01', 'json'],
    ['application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01', 'json'],
    ['application/vnd.pypi.simple.v1+html, text/html;q=0.01', 'html'],
    ['text/html', 'html'],
    ['*/*', 'html'],
    [undefined, 'html'],
    ['application/vnd.pypi.simple.v1+json;q=0.5, text/html', 'html'],
    ['application/vnd.pypi.simple.latest+json', 'json']
  ])('Accept %s gets %s', (accept, format) => {
    expect(chooseFormat(accept)).toBe(format)
  })
})

describe('piece size for files of known size', () => {
  it('splits a 1 MB wheel over the connections and keeps big files at the rule chunk', () => {
    expect(pieceSizeFor(1_000_000, 16, 4 << 20)).toBe(65536)
    expect(pieceSizeFor(1_000_000, 4, 4 << 20)).toBe(256 * 1024)
    expect(pieceSizeFor(2 * 1024 ** 3, 16, 4 << 20)).toBe(4 << 20)
    expect(pieceSizeFor(2 * 1024 ** 3, 16, 0)).toBe(4 << 20)
    expect(pieceSizeFor(1000, 16, 4 << 20)).toBe(65536)
  })
})
