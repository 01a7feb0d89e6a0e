import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { parseDigests, parseHint, tarballIdentity, verifiable, formatHint } from '../../../../node/handlers/npm/integrity.ts'
import { rewritePackument } from '../../../../node/handlers/npm/packument.ts'
import type { TarballHint } from '../../../../node/handlers/npm/packument.ts'
import { chunksOf, collect, CUTS } from '../../../helpers/chunks.ts'
import { choosePackumentFormat, classifyNpmPath } from '../../../../node/handlers/npm/paths.ts'

describe('npm paths', () => {
  it.each([
    ['/lodash', { kind: 'packument', name: 'lodash' }],
    ['/@types%2fnode', { kind: 'packument', name: '@types/node' }],
    ['/@types%2Fnode', { kind: 'packument', name: '@types/node' }],
    ['/@types/node', { kind: 'packument', name: '@types/node' }],
    ['/lodash/4.17.21', { kind: 'packument', name: 'lodash' }],
    ['/lodash/-/lodash-4.17.21.tgz', { kind: 'tarball', name: 'lodash', file: 'lodash-4.17.21.tgz' }],
    ['/@types/node/-/node-20.0.0.tgz', { kind: 'tarball', name: '@types/node', file: 'node-20.0.0.tgz' }],
    ['/@types%2fnode/-/node-20.0.0.tgz', { kind: 'tarball', name: '@types/node', file: 'node-20.0.0.tgz' }],
    ['/-/v1/search', null],
    ['/-/npm/v1/security/advisories/bulk', null],
    ['/', null],
    ['/a/b/c', null]
  ])('%s', (path, expected) => {
    expect(classifyNpmPath(path)).toEqual(expected)
  })

  it.each([
    ['application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*', 'corgi'],
    ['application/json', 'full'],
    [undefined, 'full'],
    ['*/*', 'full'],
    ['application/vnd.npm.install-v1+json;q=0.5, application/json', 'full']
  ])('Accept %s gets the %s document', (accept, format) => {
    expect(choosePackumentFormat(accept)).toBe(format)
  })
})

describe('npm digests', () => {
  const data = Buffer.from('tarball bytes')
  const sha512 = createHash('sha512').update(data)
  const sri512 = 'sha512-' + sha512.digest('base64')
  const hex512 = createHash('sha512').update(data).digest('hex')
  const sha1 = createHash('sha1').update(data).digest('hex')

  it('prefers sha512 from SRI, falls back to the sha1 shasum', () => {
    const d = parseDigests(`sha1-${Buffer.from(sha1, 'hex').toString('base64')} ${sri512}`, sha1)
    expect(d).toEqual({ sha512: hex512, sha256: null, sha1 })
    expect(verifiable(d)).toEqual({ algorithm: 'sha512', hex: hex512 })
    expect(verifiable(parseDigests(undefined, sha1))).toEqual({ algorithm: 'sha1', hex: sha1 })
    expect(verifiable(parseDigests(undefined, sha1.toUpperCase()))).toEqual({ algorithm: 'sha1', hex: sha1 })
    expect(verifiable(parseDigests(undefined, undefined))).toBeNull()
    expect(parseDigests('sha512-tooShort', undefined).sha512).toBeNull()
    expect(parseHint(formatHint({ algorithm: 'sha512', hex: hex512 }))).toEqual({ algorithm: 'sha512', hex: hex512 })
    expect(parseHint(formatHint({ algorithm: 'sha1', hex: sha1 }))).toEqual({ algorithm: 'sha1', hex: sha1 })
    expect(parseHint('sha1:abc')).toBeNull()
    expect(parseHint(`sha256:${sha1}`)).toBeNull()
  })

  it('rewrites tarball URLs only and learns their digests, however the packument is cut', async () => {
    const doc = `{"name":"a","versions":{"1.0.0":{"dist":{"integrity":"${sri512}","shasum":"${sha1}","tarball":"https://registry.example/a/-/a-1.0.0.tgz"}},"0.1.0":{"dist":{"tarball":"https:\\/\\/registry.example\\/a\\/-\\/a-0.1.0.tgz","shasum":"${sha1}"}}},"homepage":"https://registry.example/a","readme":"\\"tarball\\": \\"https://registry.example/x.tgz\\""}`
    const map = (u: URL): string | null => u.origin === 'https://registry.example' ? 'http://mirror:8081/npm' + u.pathname : null
    for (const size of CUTS) {
      const hints: TarballHint[] = []
      const out = await collect(rewritePackument(chunksOf(Buffer.from(doc), size), new URL('https://registry.example/a'), map, async (batch) => { hints.push(...batch) }))
      expect(out.toString()).toBe(doc
        .replace('"tarball":"https://registry.example/', '"tarball":"http://mirror:8081/npm/')
        .replace('"tarball":"https:\\/\\/registry.example\\/a\\/-\\/a-0.1.0.tgz"', '"tarball":"http://mirror:8081/npm/a/-/a-0.1.0.tgz"'))
      expect(hints).toEqual([['npm:https://registry.example/a/-/a-1.0.0.tgz', `sha512:${hex512}`], ['npm:https://registry.example/a/-/a-0.1.0.tgz', `sha1:${sha1}`]])
    }
  })

  it('keys sha512 tarballs by content, sha1 ones by digest and URL', () => {
    const a = new URL('https://registry.example/a/-/a-0.1.0.tgz')
    const b = new URL('https://other.example/a/-/a-0.1.0.tgz')
    expect(tarballIdentity(a, { algorithm: 'sha512', hex: hex512 })).toEqual(tarballIdentity(b, { algorithm: 'sha512', hex: hex512 }))
    const one = tarballIdentity(a, { algorithm: 'sha1', hex: sha1 })
    expect(one.expected).toEqual({ algorithm: 'sha1', hex: sha1 })
    expect(one.sha256).toBeNull()
    expect(one.key).not.toBe(tarballIdentity(b, { algorithm: 'sha1', hex: sha1 }).key)
  })
})
