import { describe, expect, it } from 'vitest'
import { isCommit, parseApiPath, parseResolveCachePath, parseResolvePath, resolvePath } from '../../../../node/handlers/hf/paths.ts'

const C = '0123456789abcdef0123456789abcdef01234567'

describe('hf paths', () => {
  it.each([
    ['/gpt2/resolve/main/config.json', { type: 'model', id: 'gpt2' }, 'main', 'config.json'],
    ['/acme/tiny/resolve/main/sub/vocab.txt', { type: 'model', id: 'acme/tiny' }, 'main', 'sub/vocab.txt'],
    ['/datasets/acme/ds/resolve/refs%2Fconvert%2Fparquet/a/b.parquet', { type: 'dataset', id: 'acme/ds' }, 'refs%2Fconvert%2Fparquet', 'a/b.parquet'],
    ['/spaces/acme/app/resolve/' + C + '/app.py', { type: 'space', id: 'acme/app' }, C, 'app.py'],
    ['/datasets/squad/resolve/main/train.json', { type: 'dataset', id: 'squad' }, 'main', 'train.json']
  ])('parses %s', (path, repo, revision, file) => {
    expect(parseResolvePath(path)).toEqual({ repo, revision, path: file })
  })

  it.each([
    '/acme/tiny/resolve/main/',
    '/acme/tiny/resolve/main',
    '/a/b/c/resolve/main/x',
    '/acme/tiny/resolve/-/x',
    '/acme/tiny/resolve/main/../../etc/passwd',
    '/acme/tiny/resolve/main/a/%2e%2e/b',
    '/acme/tiny/resolve/%2e%2e/x',
    '/acme/tiny/resolve/main/a%2Fb',
    '/acme/tiny/blob/main/x'
  ])('refuses %s', (path) => {
    expect(parseResolvePath(path)).toBeNull()
  })

  it('builds the path back', () => {
    const f = parseResolvePath('/datasets/acme/ds/resolve/main/data/x.csv')
    expect(f).not.toBeNull()
    if (f !== null) expect(resolvePath({ ...f, revision: C })).toBe(`/datasets/acme/ds/resolve/${C}/data/x.csv`)
  })

  it('parses resolve-cache paths by their commit segment', () => {
    expect(parseResolveCachePath(`/api/resolve-cache/models/acme/tiny/${C}/sub/a.txt`))
      .toEqual({ repo: { type: 'model', id: 'acme/tiny' }, revision: C, path: 'sub/a.txt' })
    expect(parseResolveCachePath(`/api/resolve-cache/models/gpt2/${C}/config.json`))
      .toEqual({ repo: { type: 'model', id: 'gpt2' }, revision: C, path: 'config.json' })
    expect(parseResolveCachePath('/api/resolve-cache/models/acme/tiny/main/a.txt')).toBeNull()
    expect(parseResolveCachePath(`/api/resolve-cache/models/acme/tiny/${C}/../x`)).toBeNull()
  })

  it.each([
    ['/api/models/gpt2', { type: 'model', id: 'gpt2' }, 'info', null],
    ['/api/models/acme/tiny', { type: 'model', id: 'acme/tiny' }, 'info', null],
    ['/api/models/acme/tiny/revision/main', { type: 'model', id: 'acme/tiny' }, 'revision', 'main'],
    ['/api/models/gpt2/revision/main', { type: 'model', id: 'gpt2' }, 'revision', 'main'],
    ['/api/datasets/acme/ds/tree/main', { type: 'dataset', id: 'acme/ds' }, 'tree', 'main'],
    ['/api/datasets/acme/ds/tree/main/sub/dir', { type: 'dataset', id: 'acme/ds' }, 'tree', 'main'],
    ['/api/models/acme/tree', { type: 'model', id: 'acme/tree' }, 'info', null],
    ['/api/models/acme/tree/revision/main', { type: 'model', id: 'acme/tree' }, 'revision', 'main'],
    ['/api/spaces/acme/app/paths-info/' + C, { type: 'space', id: 'acme/app' }, 'paths-info', C],
    ['/api/models/acme/tiny/xet-read-token/' + C, { type: 'model', id: 'acme/tiny' }, 'xet-read-token', C],
    ['/api/models/acme/tiny/refs', { type: 'model', id: 'acme/tiny' }, 'other', null]
  ])('parses API path %s', (path, repo, kind, revision) => {
    expect(parseApiPath(path)).toEqual({ repo, kind, revision })
  })

  it('refuses other API roots', () => {
    expect(parseApiPath('/api/whoami-v2')).toBeNull()
    expect(parseApiPath('/api/resolve-cache/models/a/b')).toBeNull()
  })

  it('recognises commits', () => {
    expect(isCommit(C)).toBe(true)
    expect(isCommit('main')).toBe(false)
    expect(isCommit(C.toUpperCase())).toBe(false)
  })
})
