import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../../../config/errors.ts'
import { loadConfig, parseConfig } from '../../../config/load.ts'
import { RULE, fixture, problemAt, problemsOf } from './helpers.ts'

const env = { HOME: '/home/test' }
const parse = (input: unknown): unknown => parseConfig(input, { env })

describe('ConfigError', () => {
  it('carries code ERR_CONFIG, one line per problem and the source', () => {
    const err = new ConfigError(['a: x', 'b: y'], { source: 'f.yaml' })
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('ERR_CONFIG')
    expect(err.name).toBe('ConfigError')
    expect(err.problems).toEqual(['a: x', 'b: y'])
    expect(err.source).toBe('f.yaml')
    expect(err.message).toContain('a: x')
  })
})

describe('field problems name the path, what was expected and what was found', () => {
  it('strategy typo, with a suggestion', () => {
    const p = problemAt(problemsOf(() => parse({ rules: [RULE, RULE, RULE, { ...RULE, name: 'x', strategy: 'paralel' }].map((r, i) => ({ ...r, name: `r${i}` })) })), 'rules[3].strategy')
    expect(p).toContain('"proxy" or "parallel"')
    expect(p).toContain('got "paralel"')
    expect(p).toContain('"parallel"?')
  })

  it.each([
    [{ server: { port: '80a' } }, 'server.port', '"80a"'],
    [{ server: { port: 70000 } }, 'server.port', '70000'],
    [{ server: { port: -1 } }, 'server.port', '-1'],
    [{ server: { port: 80.5 } }, 'server.port', '80.5'],
    [{ server: { host: '' } }, 'server.host', '""'],
    [{ server: { host: 'my host' } }, 'server.host', '"my host"'],
    [{ server: { host: '[::1]' } }, 'server.host', '"[::1]"'],
    [{ server: { host: '::1%lo' } }, 'server.host', '"::1%lo"'],
    [{ server: { upstream_proxy: 'proxy:3128' } }, 'server.upstream_proxy', '"proxy:3128"'],
    [{ server: { public_host: 'a b' } }, 'server.public_host', '"a b"'],
    [{ server: { public_host: 'host:99999' } }, 'server.public_host', '"host:99999"'],
    [{ server: { public_host: 'https://m.example/?q=1' } }, 'server.public_host', '"https://m.example/?q=1"'],
    [{ server: { max_concurrent_downloads: 0 } }, 'server.max_concurrent_downloads', '0'],
    [{ server: { connect_timeout_s: 0 } }, 'server.connect_timeout_s', '0'],
    [{ server: { read_timeout_s: 'soon' } }, 'server.read_timeout_s', '"soon"'],
    [{ server: { read_timeout_s: 3000000 } }, 'server.read_timeout_s', '3000000'],
    [{ server: { connect_timeout_s: 1e9 } }, 'server.connect_timeout_s', '1000000000'],
    [{ server: { shutdown_timeout_s: -1 } }, 'server.shutdown_timeout_s', '-1'],
    [{ cache: { max_size_gb: -1 } }, 'cache.max_size_gb', '-1'],
    [{ cache: { lru_enabled: 'maybe' } }, 'cache.lru_enabled', '"maybe"'],
    [{ cache: { chunk_ttl_hours: 0 } }, 'cache.chunk_ttl_hours', '0'],
    [{ cache: { min_free_gb: [] } }, 'cache.min_free_gb', 'a list'],
    [{ cache: { finish_abandoned: 1 } }, 'cache.finish_abandoned', '1'],
    [{ cache: { verify_every_days: -1 } }, 'cache.verify_every_days', '-1'],
    [{ cache: { dir: '' } }, 'cache.dir', '""'],
    [{ logging: { level: 'LOUD' } }, 'logging.level', '"LOUD"'],
    [{ logging: { file: 5 } }, 'logging.file', '5'],
    [{ content_rewrite: { targets: ['https://files.pythonhosted.org/packages'] } }, 'content_rewrite.targets[0]', '"https://files.pythonhosted.org/packages"'],
    [{ content_rewrite: { content_types: 'text/html' } }, 'content_rewrite.content_types', '"text/html"'],
    [{ server: 5 }, 'server', '5'],
    [{ rules: { name: 'x' } }, 'rules', 'a mapping'],
    [{ rules: ['x'] }, 'rules[0]', '"x"'],
    [{ rules: [{ ...RULE, upstream: 'ftp://example.com' }] }, 'rules[0].upstream', '"ftp://example.com"'],
    [{ rules: [{ ...RULE, upstream: 'example.com' }] }, 'rules[0].upstream', '"example.com"'],
    [{ rules: [{ ...RULE, upstream: 'https://example.com/?a=1' }] }, 'rules[0].upstream', '"https://example.com/?a=1"'],
    // Named, never shown: the password stays out of the message.
    [{ rules: [{ ...RULE, upstream: 'https://art:s3cret@repo.example/pypi' }] }, 'rules[0].upstream', '"https://[credentials]@repo.example/pypi"'],
    [{ rules: [{ ...RULE, pattern: '(unclosed' }] }, 'rules[0].pattern', '"(unclosed"'],
    [{ rules: [{ ...RULE, path_prefix: 'npm/' }] }, 'rules[0].path_prefix', '"npm/"'],
    [{ rules: [{ ...RULE, concurrency: 0 }] }, 'rules[0].concurrency', '0'],
    [{ rules: [{ ...RULE, concurrency: 257 }] }, 'rules[0].concurrency', '257'],
    [{ rules: [{ ...RULE, min_size: -1 }] }, 'rules[0].min_size', '-1'],
    [{ rules: [{ ...RULE, max_size: 1.5 }] }, 'rules[0].max_size', '1.5'],
    [{ rules: [{ ...RULE, chunk_size: 'big' }] }, 'rules[0].chunk_size', '"big"'],
    [{ rules: [{ ...RULE, cache_key_source: 'url' }] }, 'rules[0].cache_key_source', '"url"'],
    [{ rules: [{ ...RULE, strip_prefix: 'yes please' }] }, 'rules[0].strip_prefix', '"yes please"'],
    [{ rules: [{ ...RULE, path_rewrite: [{ search: '', replace: 'x' }] }] }, 'rules[0].path_rewrite[0].search', '""'],
    [{ rules: [{ ...RULE, path_rewrite: { search: 'a', replace: 'b' } }] }, 'rules[0].path_rewrite', 'a mapping'],
    [{ rules: [{ ...RULE, head_meta_headers: ['x repo'] }] }, 'rules[0].head_meta_headers[0]', '"x repo"'],
    [{ rules: [{ ...RULE, handler: 'handlers.custom' }] }, 'rules[0].handler', '"handlers.custom"'],
    [{ rules: [{ ...RULE, handler: 'docker' }] }, 'rules[0].handler', '"docker"'],
    [{ rules: [{ ...RULE, content_rewrite: { targets: ['files.pythonhosted.org'] } }] }, 'rules[0].content_rewrite.targets[0]', '"files.pythonhosted.org"'],
    [{ rules: [{ ...RULE, header_rewrite: { realm: 'auth.docker.io/token' } }] }, 'rules[0].header_rewrite.realm', '"auth.docker.io/token"'],
    [{ rules: [{ ...RULE, metadata_ttl_s: -5 }] }, 'rules[0].metadata_ttl_s', '-5'],
    [{ rules: [{ ...RULE, revalidate_s: 'daily' }] }, 'rules[0].revalidate_s', '"daily"']
  ])('%j → %s', (input, where, found) => {
    const p = problemAt(problemsOf(() => parse(input)), where)
    expect(p).toMatch(/: expected /)
    expect(p).toContain(`got ${found}`)
  })

  it('the handler problem lists the accepted names and seed module paths', () => {
    const p = problemAt(problemsOf(() => parse({ rules: [{ ...RULE, handler: 'handlers.custom' }] })), 'rules[0].handler')
    for (const name of ['pypi', 'oci', 'hf', 'npm', 'conda', 'cran', 'generic', 'handlers.docker']) expect(p).toContain(name)
  })

  it('missing required rule fields are reported as missing', () => {
    const problems = problemsOf(() => parse({ rules: [{ pattern: '/x' }] }))
    expect(problemAt(problems, 'rules[0].name')).toMatch(/missing/)
    expect(problemAt(problems, 'rules[0].upstream')).toMatch(/missing/)
  })

  it('a rule needs pattern or path_prefix', () => {
    const problems = problemsOf(() => parse({ rules: [{ name: 'x', upstream: 'https://example.com', pattern: '' }] }))
    expect(problems.some((p) => p.startsWith('rules[0]') && p.includes('path_prefix'))).toBe(true)
  })

  it('strip_prefix needs path_prefix; max_size must not be below min_size', () => {
    const problems = problemsOf(() => parse({ rules: [{ name: 'x', pattern: '/x', upstream: 'https://e.com', strip_prefix: true, min_size: 10, max_size: 5 }] }))
    problemAt(problems, 'rules[0].strip_prefix')
    expect(problemAt(problems, 'rules[0].max_size')).toContain('got 5')
  })

  it('rule names are unique', () => {
    const problems = problemsOf(() => parse({ rules: [RULE, { ...RULE, path_prefix: '/s/' }] }))
    const p = problemAt(problems, 'rules[1].name')
    expect(p).toContain('"r"')
    expect(p).toContain('rules[0]')
  })
})

describe('unknown keys', () => {
  it.each([
    [{ swarm: { enabled: true } }, 'swarm', undefined],
    [{ cluster: { mdsn: false } }, 'cluster.mdsn', 'mdns'],
    [{ sever: { port: 1 } }, 'sever', 'server'],
    [{ server: { prot: 1 } }, 'server.prot', 'port'],
    [{ cache: { max_size_gbb: 1 } }, 'cache.max_size_gbb', 'max_size_gb'],
    [{ logging: { levle: 'info' } }, 'logging.levle', 'level'],
    [{ content_rewrite: { target: [] } }, 'content_rewrite.target', 'targets'],
    [{ rules: [{ ...RULE, concurrrency: 2 }] }, 'rules[0].concurrrency', 'concurrency'],
    [{ rules: [{ ...RULE, Strategy: 'proxy' }] }, 'rules[0].Strategy', 'strategy'],
    [{ rules: [{ ...RULE, content_rewrite: { targest: [] } }] }, 'rules[0].content_rewrite.targest', 'targets'],
    [{ rules: [{ ...RULE, header_rewrite: { relm: 'https://a.example/token' } }] }, 'rules[0].header_rewrite.relm', 'realm'],
    [{ rules: [{ ...RULE, path_rewrite: [{ search: '/a', replace: '/b', replce: '' }] }] }, 'rules[0].path_rewrite[0].replce', 'replace']
  ])('%j → %s', (input, where, guess) => {
    const p = problemAt(problemsOf(() => parse(input)), where)
    expect(p).toContain('unknown key')
    if (guess !== undefined) expect(p).toContain(`"${guess}"`)
  })

  it('with no close match, the known keys are listed', () => {
    const p = problemAt(problemsOf(() => parse({ cache: { zzzzzz: 1 } })), 'cache.zzzzzz')
    expect(p).toContain('max_size_gb')
    expect(p).not.toContain('did you mean')
  })
})

describe('an upstream that is the node itself', () => {
  it.each([
    [{ server: { port: 8081 }, rules: [{ ...RULE, upstream: 'http://127.0.0.1:8081/b' }] }, 'rules[0].upstream'],
    [{ server: { port: 8081 }, rules: [{ ...RULE, upstream: 'http://localhost:8081' }] }, 'rules[0].upstream'],
    [{ server: { host: '10.0.0.5', port: 80 }, rules: [RULE, { ...RULE, name: 's', upstream: 'http://10.0.0.5/' }] }, 'rules[1].upstream'],
    [{ server: { port: 8081, upstream_proxy: 'http://[::1]:8081' }, rules: [RULE] }, 'server.upstream_proxy'],
    [{ server: { port: 8081 }, rules: [RULE], oci: { registries: { 'ghcr.io': 'http://0.0.0.0:8081' } } }, 'oci.registries.ghcr.io']
  ])('is refused at its field: %j', (doc, field) => {
    expect(problemAt(problemsOf(() => parse(doc)), field)).toContain('is this node itself (server.port')
  })

  it('on another port or host is fine', () => {
    expect(() => parse({ server: { port: 8081 }, rules: [{ ...RULE, upstream: 'http://127.0.0.1:8082' }, { ...RULE, name: 's', upstream: 'http://other:8081' }] })).not.toThrow()
  })
})

describe('every problem is reported, not just the first', () => {
  it('across sections and rules', () => {
    const problems = problemsOf(() => loadConfig({ file: fixture('bad-many.yaml'), env }))
    for (const where of ['server.port', 'server.public_host', 'cache.sizee', 'rules[0].strategy', 'rules[1].pattern',
      'rules[1].upstream', 'rules[1].handler', 'rules[1].name', 'logging.level']) problemAt(problems, where)
    expect(problems.some((p) => p.startsWith('rules[2]') && p.includes('path_prefix'))).toBe(true)
    expect(problems).toHaveLength(10)
  })

  it('unknown keys at several levels at once', () => {
    const problems = problemsOf(() => loadConfig({ file: fixture('bad-unknown-key.yaml'), env }))
    expect(problemAt(problems, 'cache.max_size_gbb')).toContain('"max_size_gb"')
    expect(problemAt(problems, 'rules[0].concurrrency')).toContain('"concurrency"')
    problemAt(problems, 'swarm')
    expect(problems).toHaveLength(3)
  })
})

describe('file problems', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aimirror-config-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('a missing file names the path', () => {
    const missing = join(dir, 'nope.yaml')
    const problems = problemsOf(() => loadConfig({ file: missing, env }))
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*not found`))
  })

  it('a directory is not a config file', () => {
    expect(problemsOf(() => loadConfig({ file: dir, env }))[0]).toContain(dir)
  })

  it('YAML syntax errors name line and column', () => {
    const file = fixture('bad-yaml.yaml')
    const problems = problemsOf(() => loadConfig({ file, env }))
    expect(problems.length).toBeGreaterThan(0)
    expect(problems[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `))
  })

  it('duplicate keys are a YAML error with their position', () => {
    const file = join(dir, 'dup.yaml')
    writeFileSync(file, 'server:\n  port: 1\n  port: 2\n')
    expect(problemsOf(() => loadConfig({ file, env }))[0]).toMatch(/dup\.yaml:3:\d+: /)
  })

  it('a document that is not a mapping', () => {
    const file = join(dir, 'list.yaml')
    writeFileSync(file, '- a\n- b\n')
    expect(problemsOf(() => loadConfig({ file, env }))[0]).toContain('a list')
    expect(problemsOf(() => parse(['a']))).toHaveLength(1)
    expect(problemsOf(() => parse('server: 1'))).toHaveLength(1)
  })
})

describe('environment and flag problems name the variable or flag', () => {
  it.each([
    [{ AIMIRROR_PORT: '80a' }, 'AIMIRROR_PORT', '"80a"'],
    [{ AIMIRROR_HOST: ' ' }, undefined, undefined],
    [{ AIMIRROR_MAX_SIZE_GB: 'lots' }, 'AIMIRROR_MAX_SIZE_GB', '"lots"'],
    [{ AIMIRROR_LOG_LEVEL: 'chatty' }, 'AIMIRROR_LOG_LEVEL', '"chatty"'],
    [{ AIMIRROR_PUBLIC_HOST: 'a b' }, 'AIMIRROR_PUBLIC_HOST', '"a b"'],
    [{ AIMIRROR_UPSTREAM_PROXY: 'socks://x' }, 'AIMIRROR_UPSTREAM_PROXY', '"socks://x"']
  ])('%j', (vars, where, found) => {
    if (where === undefined) {
      // Blank variables count as unset.
      expect(loadConfig({ env: { ...env, ...vars } }).server.host).toBe('127.0.0.1')
      return
    }
    const p = problemAt(problemsOf(() => loadConfig({ env: { ...env, ...vars } })), where)
    expect(p).toContain(`got ${found}`)
  })

  it('flags', () => {
    const problems = problemsOf(() => loadConfig({ env, flags: { port: 70000, host: '', cacheDir: '', logLevel: 'loud' } }))
    expect(problemAt(problems, '--port')).toContain('got 70000')
    problemAt(problems, '--host')
    problemAt(problems, '--cache-dir')
    expect(problemAt(problems, '--log-level')).toContain('"loud"')
  })

  it('a flag that overrides a bad env value hides it; the file path is used when the file set it', () => {
    expect(loadConfig({ env: { ...env, AIMIRROR_PORT: '80a' }, flags: { port: 1234 } }).server.port).toBe(1234)
    const problems = problemsOf(() => loadConfig({ file: fixture('bad-many.yaml'), env }))
    problemAt(problems, 'server.port')
  })
})
