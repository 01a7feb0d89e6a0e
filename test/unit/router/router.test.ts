import { describe, expect, it } from 'vitest'
import { createRouter } from '../../../node/router/router.ts'
import { isAimirrorError } from '../../../node/errors.ts'
import { makeRule } from '../../helpers/config.ts'

const rules = [
  makeRule({ name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: 'https://registry.npmjs.org' }),
  makeRule({ name: 'conda', path_prefix: '/conda-forge', strip_prefix: true, upstream: 'https://conda.anaconda.org/conda-forge/' }),
  makeRule({ name: 'keep', path_prefix: '/keep', upstream: 'https://keep.example' }),
  makeRule({ name: 'both', path_prefix: '/both/', pattern: '\\.whl$', upstream: 'https://both.example' }),
  makeRule({ name: 'hf', pattern: '/.*/(blob|resolve)/[^/]+/.+', upstream: 'https://huggingface.co', path_rewrite: [{ search: '/blob/', replace: '/resolve/' }] }),
  makeRule({ name: 'chain', pattern: '^/chain/', upstream: 'https://chain.example', path_rewrite: [{ search: 'a', replace: 'b' }, { search: 'b', replace: 'c' }] }),
  makeRule({ name: 'default', pattern: '.*', upstream: 'https://pypi.org' })
]
const router = createRouter(rules)

describe('router.match', () => {
  it.each([
    ['/npm/react', 'npm', 'https://registry.npmjs.org/react'],
    ['/npm/@types%2fnode', 'npm', 'https://registry.npmjs.org/@types%2fnode'],
    ['/npm/', 'npm', 'https://registry.npmjs.org/'],
    ['/npmjs/x', 'default', 'https://pypi.org/npmjs/x'],
    ['/conda-forge/noarch/repodata.json', 'conda', 'https://conda.anaconda.org/conda-forge/noarch/repodata.json'],
    ['/conda-forge', 'conda', 'https://conda.anaconda.org/conda-forge/'],
    ['/conda-forgery/x', 'default', 'https://pypi.org/conda-forgery/x'],
    ['/keep/a/b', 'keep', 'https://keep.example/keep/a/b'],
    ['/both/pkg.whl', 'both', 'https://both.example/both/pkg.whl'],
    ['/both/pkg.tar.gz', 'default', 'https://pypi.org/both/pkg.tar.gz'],
    ['/gpt2/blob/main/config.json', 'hf', 'https://huggingface.co/gpt2/resolve/main/config.json'],
    ['/chain/a', 'chain', 'https://chain.example/chcin/c'],
    ['/simple/torch/?format=json&x=%2F', 'default', 'https://pypi.org/simple/torch/?format=json&x=%2F'],
    ['/npm/react?write=true', 'npm', 'https://registry.npmjs.org/react?write=true'],
    ['/a//b', 'default', 'https://pypi.org/a//b'],
    ['/files/my%20model.bin', 'default', 'https://pypi.org/files/my%20model.bin']
  ])('%s → %s', (target, name, url) => {
    const m = router.match(target)
    expect(m?.rule.name).toBe(name)
    expect(m?.upstreamUrl.href).toBe(url)
  })

  it('returns null when no rule matches', () => {
    const only = createRouter([makeRule({ pattern: '^/v2/', upstream: 'https://registry-1.docker.io' })])
    expect(only.match('/simple/')).toBeNull()
    expect(only.match('/v2/')?.upstreamUrl.href).toBe('https://registry-1.docker.io/v2/')
  })

  it.each([
    ['http://evil.example/x', 'absolute_form'],
    ['evil.example:443', 'absolute_form'],
    ['*', 'asterisk_form'],
    ['//evil.example/x', 'authority_in_path'],
    ['/%2F%2Fevil.example/x', 'authority_in_path'],
    ['/npm/../etc/passwd', 'dot_segment'],
    ['/npm/%2e%2e/x', 'dot_segment'],
    ['/npm/%2E%2E%2Fx', 'dot_segment'],
    ['/npm/..%5Cx', 'dot_segment'],
    ['/npm/./x', 'dot_segment'],
    ['/npm/a\\..\\x', 'forbidden_character'],
    ['/npm/%00', 'forbidden_character'],
    ['/npm/%E0%A4%A', 'bad_encoding']
  ])('refuses %s', (target, reason) => {
    let caught: unknown
    try { router.match(target) } catch (err) { caught = err }
    expect(isAimirrorError(caught) && caught.code).toBe('ERR_BAD_REQUEST')
    expect(isAimirrorError(caught) && caught.detail?.reason).toBe(reason)
  })

  it('never leaves the upstream, even when a rewrite produces dot segments', () => {
    const r = createRouter([makeRule({ pattern: '^/x/', upstream: 'https://up.example/base', path_rewrite: [{ search: '/x/', replace: '/../../' }] })])
    expect(() => r.match('/x/y')).toThrow(expect.objectContaining({ code: 'ERR_BAD_REQUEST' }))
  })

  it('keeps the upstream base path', () => {
    const r = createRouter([makeRule({ pattern: '.*', upstream: 'https://up.example/mirror/' })])
    expect(r.match('/pkg/file?x=1')?.upstreamUrl.href).toBe('https://up.example/mirror/pkg/file?x=1')
  })
})

describe('paths the mirror names itself', () => {
  const blobsOnly = [makeRule({ name: 'blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream: 'https://registry-1.docker.io', handler: 'oci' })]

  it('go to the first rule of their handler when no rule covers them', () => {
    const r = createRouter(blobsOnly, [{ path: '/v2/token', handler: 'oci' }])
    expect(r.match('/v2/token?service=docker.io&scope=repository:library/x:pull')?.rule.name).toBe('blobs')
    expect(r.match('/v2/tokens')).toBeNull()
    expect(r.match('/v2/')).toBeNull()
  })

  it('are left to the rules that cover them, and unmatched without a rule of their handler', () => {
    const covered = createRouter([makeRule({ name: 'all', pattern: '.*', upstream: 'https://pypi.org' }), ...blobsOnly], [{ path: '/v2/token', handler: 'oci' }])
    expect(covered.match('/v2/token')?.rule.name).toBe('all')
    const none = createRouter([makeRule({ name: 'files', path_prefix: '/files/', upstream: 'https://files.example' })], [{ path: '/v2/token', handler: 'oci' }])
    expect(none.match('/v2/token')).toBeNull()
  })
})
