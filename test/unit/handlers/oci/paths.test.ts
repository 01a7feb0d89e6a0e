import { describe, expect, it } from 'vitest'
import { acceptLines, acceptVariant, manifestMediaType } from '../../../../node/handlers/oci/accept.ts'
import { parseOciPath, validName } from '../../../../node/handlers/oci/api-path.ts'
import { bearerChallenge, parseChallenges } from '../../../../node/handlers/oci/challenge.ts'
import { rewriteLink } from '../../../../node/handlers/oci/listings.ts'
import { RegistryMap } from '../../../../node/handlers/oci/registries.ts'
import { scopeNames } from '../../../../node/handlers/oci/token-endpoint.ts'

const D = 'sha256:' + 'a'.repeat(64)

describe('API paths', () => {
  it.each([
    ['/v2/', { kind: 'ping' }],
    ['/v2', { kind: 'ping' }],
    ['/v2/token', { kind: 'token' }],
    ['/v2/_catalog', { kind: 'catalog' }],
    ['/v2/library/ubuntu/manifests/22.04', { kind: 'manifest', name: 'library/ubuntu', reference: { kind: 'tag', tag: '22.04' } }],
    [`/v2/a/b/c/manifests/${D}`, { kind: 'manifest', name: 'a/b/c', reference: { kind: 'digest', digest: { algorithm: 'sha256', hex: 'a'.repeat(64), value: D } } }],
    [`/v2/ghcr.io/owner/img/blobs/${D}`, { kind: 'blob', name: 'ghcr.io/owner/img', digest: { algorithm: 'sha256', hex: 'a'.repeat(64), value: D } }],
    ['/v2/localhost:5000/x/tags/list', { kind: 'tags', name: 'localhost:5000/x' }],
    [`/v2/x/referrers/${D}`, { kind: 'referrers', name: 'x', digest: { algorithm: 'sha256', hex: 'a'.repeat(64), value: D } }],
    ['/v2/x/blobs/uploads/', { kind: 'upload', name: 'x' }],
    ['/v2/x/blobs/uploads/1234-5678', { kind: 'upload', name: 'x' }],
    ['/v2/UPPER/manifests/1', { kind: 'invalid', reason: 'name' }],
    ['/v2/a//b/manifests/1', { kind: 'invalid', reason: 'name' }],
    ['/v2/a/manifests/-bad', { kind: 'invalid', reason: 'reference' }],
    ['/v2/a/blobs/sha256:abc', { kind: 'invalid', reason: 'digest' }],
    ['/v2/a/whatever', { kind: 'invalid', reason: 'path' }],
    ['/v2/..%2f/manifests/1', { kind: 'invalid', reason: 'name' }]
  ])('%s', (path, expected) => {
    expect(parseOciPath(path)).toEqual(expected)
  })

  it('allows a host only as the first of several components', () => {
    expect(validName('ghcr.io/a')).toBe(true)
    expect(validName('ghcr.io')).toBe(true)
    expect(validName('a/ghcr.io:5000')).toBe(false)
    expect(validName('x:5000')).toBe(false)
    expect(validName('a'.repeat(256))).toBe(false)
  })
})

describe('registry routing', () => {
  const map = new RegistryMap({ 'docker.io': 'https://registry-1.docker.io/', 'ghcr.io': 'https://ghcr.io', 'localhost:5000': 'http://127.0.0.1:5000' })
  const HUB = 'https://registry-1.docker.io'
  it.each([
    // name, hint, fallback → registry, upstream, repo, ns
    ['library/tiny', null, HUB, ['docker.io', HUB, 'library/tiny', null]],
    ['tiny', null, HUB, ['docker.io', HUB, 'library/tiny', null]],
    ['tiny', 'docker.io', HUB, ['docker.io', HUB, 'library/tiny', 'docker.io']],
    ['owner/img', 'ghcr.io', HUB, ['ghcr.io', 'https://ghcr.io', 'owner/img', 'ghcr.io']],
    ['ghcr.io/owner/img', null, HUB, ['ghcr.io', 'https://ghcr.io', 'owner/img', null]],
    ['docker.io/ubuntu', null, HUB, ['docker.io', HUB, 'library/ubuntu', null]],
    ['index.docker.io/library/ubuntu', null, HUB, ['docker.io', HUB, 'library/ubuntu', null]],
    ['localhost:5000/app', null, HUB, ['localhost:5000', 'http://127.0.0.1:5000', 'app', null]],
    ['team/app', null, 'http://reg.corp:8080', ['reg.corp:8080', 'http://reg.corp:8080', 'team/app', null]],
    ['app', null, 'http://reg.corp:8080', ['reg.corp:8080', 'http://reg.corp:8080', 'app', null]]
  ])('%s (hint %s)', (name, hint, fallback, [registry, upstream, repo, ns]) => {
    expect(map.resolve(name, hint, fallback, true)).toEqual({ registry, upstream, repo, name, ns })
  })

  it('refuses an explicit ns it does not know, ignores an unknown token service', () => {
    expect(map.resolve('x/y', 'quay.io', HUB, true)).toBeNull()
    expect(map.resolve('x/y', 'quay.io', HUB, false)?.upstream).toBe(HUB)
    expect(map.serviceUpstream('ghcr.io', HUB)).toBe('https://ghcr.io')
    expect(map.serviceUpstream('quay.io', HUB)).toBe(HUB)
    expect(map.serviceUpstream(null, HUB + '/')).toBe(HUB)
  })
})

describe('challenges', () => {
  it('parses several challenges and quoted values', () => {
    expect(parseChallenges(['Basic realm="quay.io", Bearer realm="https://quay.io/v2/auth",service="quay.io",scope="repository:a/b:pull"'])).toEqual([
      { scheme: 'basic', params: { realm: 'quay.io' } },
      { scheme: 'bearer', params: { realm: 'https://quay.io/v2/auth', service: 'quay.io', scope: 'repository:a/b:pull' } }
    ])
    expect(parseChallenges(['Bearer realm="a\\"b", error=insufficient_scope'])).toEqual([{ scheme: 'bearer', params: { realm: 'a"b', error: 'insufficient_scope' } }])
  })

  it('writes what it parses back', () => {
    const header = bearerChallenge({ realm: 'http://m/v2/token', service: 'docker.io', scope: 'repository:x:pull', error: undefined })
    expect(header).toBe('Bearer realm="http://m/v2/token",service="docker.io",scope="repository:x:pull"')
    expect(parseChallenges([header])[0]?.params.scope).toBe('repository:x:pull')
  })
})

describe('token scopes', () => {
  it('reads repository pull scopes, several per parameter, with ports and resource classes', () => {
    expect(scopeNames(['repository:library/ubuntu:pull', 'repository:a/b:pull,push repository(plugin):p/q:pull', 'registry:catalog:*', 'repository:localhost:5000/x:pull', 'repository:c:push'])).toEqual(
      ['library/ubuntu', 'a/b', 'p/q', 'localhost:5000/x'])
  })
})

describe('Accept handling', () => {
  it('keeps every line and keys variants by the set of types', () => {
    const lines = acceptLines(['Accept', 'a/x; q=0.5, b/y', 'User-Agent', 'z', 'accept', 'c/z'])
    expect(lines).toEqual(['accept', 'a/x; q=0.5, b/y', 'accept', 'c/z'])
    expect(acceptVariant(lines)).toBe('a/x,b/y,c/z')
    expect(acceptVariant(['accept', 'C/Z, b/y', 'accept', 'a/x'])).toBe(acceptVariant(lines))
  })

  it('names a manifest type from the document when upstream did not', () => {
    expect(manifestMediaType(Buffer.from('{"mediaType":"x/y"}'))).toBe('x/y')
    expect(manifestMediaType(Buffer.from('{"schemaVersion":2,"manifests":[]}'))).toBe('application/vnd.oci.image.index.v1+json')
    expect(manifestMediaType(Buffer.from('{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json"}}'))).toBe('application/vnd.docker.distribution.manifest.v2+json')
    expect(manifestMediaType(Buffer.from('not json'))).toBe('application/vnd.oci.image.manifest.v1+json')
  })
})

describe('pagination links', () => {
  const target = { registry: 'ghcr.io', upstream: 'https://ghcr.io', repo: 'owner/img', name: 'ghcr.io/owner/img', ns: null }
  it('points relative and absolute links back at the name the client used', () => {
    expect(rewriteLink('</v2/owner/img/tags/list?last=b&n=2>; rel="next"', target)).toBe('</v2/ghcr.io/owner/img/tags/list?last=b&n=2>; rel="next"')
    expect(rewriteLink('<https://ghcr.io/v2/owner/img/tags/list?last=b>; rel="next"', { ...target, name: 'owner/img', ns: 'ghcr.io' }))
      .toBe('</v2/owner/img/tags/list?last=b&ns=ghcr.io>; rel="next"')
    expect(rewriteLink('<https://elsewhere.example/x>; rel="next"', target)).toBe('<https://elsewhere.example/x>; rel="next"')
  })
})
