import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { configToYaml, loadConfig, parseConfig } from '../../../config/load.ts'
import { fixture } from './helpers.ts'

const env = { HOME: '/home/test' }
const dir = mkdtempSync(join(tmpdir(), 'aimirror-load-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function writeYaml (name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

describe('layering: defaults ← file ← env ← flags', () => {
  const file = writeYaml('layers.yaml', 'server:\n  port: 9000\n  host: "0.0.0.0"\ncache:\n  max_size_gb: 10\nlogging:\n  level: WARNING\n')

  it('a file merges over the defaults field by field', () => {
    const config = loadConfig({ file, env })
    expect(config.server.port).toBe(9000)
    expect(config.server.host).toBe('0.0.0.0')
    expect(config.server.read_timeout_s).toBe(30)
    expect(config.cache.max_size_gb).toBe(10)
    expect(config.cache.min_free_gb).toBe(5)
    expect(config.logging.level).toBe('warn')
    // No rules in the file: the default rules stay.
    expect(config.rules.length).toBeGreaterThan(10)
  })

  it('env overrides the file, flags override env', () => {
    const fromEnv = loadConfig({ file, env: { ...env, AIMIRROR_PORT: '9100', AIMIRROR_HOST: '::1', AIMIRROR_LOG_LEVEL: 'debug', AIMIRROR_MAX_SIZE_GB: '2.5' } })
    expect(fromEnv.server.port).toBe(9100)
    expect(fromEnv.server.host).toBe('::1')
    expect(fromEnv.logging.level).toBe('debug')
    expect(fromEnv.cache.max_size_gb).toBe(2.5)
    const fromFlags = loadConfig({
      file,
      env: { ...env, AIMIRROR_PORT: '9100', AIMIRROR_HOST: '::1', AIMIRROR_LOG_LEVEL: 'debug', AIMIRROR_CACHE_DIR: '/env/cache' },
      flags: { port: 0, host: '127.0.0.2', logLevel: 'ERROR', cacheDir: '/flag/cache' }
    })
    expect(fromFlags.server.port).toBe(0)
    expect(fromFlags.server.host).toBe('127.0.0.2')
    expect(fromFlags.logging.level).toBe('error')
    expect(fromFlags.cache.dir).toBe('/flag/cache')
    expect(loadConfig({ env: { ...env, AIMIRROR_CACHE_DIR: '/env/cache' } }).cache.dir).toBe('/env/cache')
  })

  it('AIMIRROR_PUBLIC_HOST and AIMIRROR_UPSTREAM_PROXY set values, and empty clears them', () => {
    const withValues = writeYaml('proxy.yaml', 'server:\n  public_host: "mirror.lan:8081"\n  upstream_proxy: "http://proxy.lan:3128"\n')
    expect(loadConfig({ file: withValues, env }).server.upstream_proxy).toBe('http://proxy.lan:3128')
    const cleared = loadConfig({ file: withValues, env: { ...env, AIMIRROR_PUBLIC_HOST: '', AIMIRROR_UPSTREAM_PROXY: '' } })
    expect(cleared.server.public_host).toBeNull()
    expect(cleared.server.upstream_proxy).toBeNull()
    const set = loadConfig({ env: { ...env, AIMIRROR_PUBLIC_HOST: 'https://mirror.example/', AIMIRROR_UPSTREAM_PROXY: 'http://u:p@proxy:3128/' } })
    expect(set.server.public_host).toBe('https://mirror.example')
    expect(set.server.upstream_proxy).toBe('http://u:p@proxy:3128')
  })

  it('other blank variables count as unset', () => {
    const config = loadConfig({ file, env: { ...env, AIMIRROR_PORT: '', AIMIRROR_HOST: '', AIMIRROR_CONFIG: '', AIMIRROR_LOG_LEVEL: '' } })
    expect(config.server.port).toBe(9000)
  })

  it('AIMIRROR_CONFIG names the file when none is given; an explicit file wins', () => {
    expect(loadConfig({ env: { ...env, AIMIRROR_CONFIG: file } }).server.port).toBe(9000)
    const other = writeYaml('other.yaml', 'server:\n  port: 9200\n')
    expect(loadConfig({ file: other, env: { ...env, AIMIRROR_CONFIG: file } }).server.port).toBe(9200)
    expect(loadConfig({ file: null, env: { ...env, AIMIRROR_CONFIG: file } }).server.port).toBe(9000)
  })

  it('a file\'s rules replace the default rules entirely', () => {
    const config = loadConfig({ file: fixture('minimal.yaml'), env })
    expect(config.rules.map((r) => r.name)).toEqual(['files'])
    expect(config.server.port).toBe(9090)
    const none = loadConfig({ file: writeYaml('norules.yaml', 'rules: []\n'), env })
    expect(none.rules).toEqual([])
  })

  it('empty sections and an empty file keep the defaults', () => {
    expect(loadConfig({ file: writeYaml('empty.yaml', ''), env }).server.port).toBe(8081)
    expect(loadConfig({ file: writeYaml('nulls.yaml', 'server:\nlogging:\n'), env }).logging.level).toBe('info')
  })
})

describe('YAML as PyYAML read the seed\'s files', () => {
  it('y and n are strings, yes/no/on/off booleans', () => {
    const file = writeYaml('pyyaml.yaml', [
      'server:', '  port: 9001',
      'cache:', '  lru_enabled: off', '  finish_abandoned: yes',
      'rules:', '  - name: y', '    path_prefix: /y/', '    upstream: https://y.example', '    strip_prefix: on',
      '  - name: n', '    path_prefix: /n/', '    upstream: https://n.example', ''
    ].join('\n'))
    const config = loadConfig({ file, env })
    expect(config.server.port).toBe(9001)
    expect(config.cache.lru_enabled).toBe(false)
    expect(config.cache.finish_abandoned).toBe(true)
    expect(config.rules.map(r => [r.name, r.strip_prefix])).toEqual([['y', true], ['n', false]])
  })
})

describe('normalised values', () => {
  it('relative and ~ paths become absolute', () => {
    const config = parseConfig({ cache: { dir: 'cache' }, logging: { file: '~/logs/aimirror.log' } }, { env, cwd: '/srv/mirror' })
    expect(config.cache.dir).toBe('/srv/mirror/cache')
    expect(config.logging.file).toBe('/home/test/logs/aimirror.log')
    expect(parseConfig({ cache: { dir: '~/c' } }, { env }).cache.dir).toBe('/home/test/c')
  })

  it('rule defaults are filled in, upstream loses its trailing slash, handler names are normalised', () => {
    const [rule] = parseConfig({ rules: [{ name: 'x', path_prefix: '/x/', upstream: 'https://e.example/base/', handler: 'handlers.huggingface' }] }, { env }).rules
    expect(rule).toEqual({
      name: 'x',
      pattern: null,
      path_prefix: '/x/',
      strip_prefix: false,
      upstream: 'https://e.example/base',
      strategy: 'proxy',
      min_size: 1048576,
      max_size: null,
      concurrency: 16,
      chunk_size: 0,
      cache_key_source: 'final',
      path_rewrite: [],
      head_meta_headers: [],
      handler: 'hf',
      content_rewrite: null,
      header_rewrite: null,
      metadata_ttl_s: 300,
      revalidate_s: 600
    })
  })

  it('revalidate_s: seconds, or null (or "") for files that never change', () => {
    const rules = parseConfig({
      rules: [
        { name: 'a', path_prefix: '/a/', upstream: 'https://e.example', revalidate_s: 30 },
        { name: 'b', path_prefix: '/b/', upstream: 'https://e.example', revalidate_s: null },
        { name: 'c', path_prefix: '/c/', upstream: 'https://e.example', revalidate_s: '' }
      ]
    }, { env }).rules
    expect(rules.map(r => r.revalidate_s)).toEqual([30, null, null])
  })

  it('a rule without handler gets one from its upstream host; explicit null or "" means none', () => {
    const rules = parseConfig({
      rules: [
        { name: 'a', pattern: '/a', upstream: 'https://registry.npmjs.org' },
        { name: 'b', pattern: '/b', upstream: 'https://registry.npmjs.org', handler: null },
        { name: 'c', pattern: '/c', upstream: 'https://registry.npmjs.org', handler: '' },
        { name: 'd', pattern: '/d', upstream: 'https://downloads.example.com' },
        { name: 'e', pattern: '/e', upstream: 'https://huggingface.co', handler: 'generic' }
      ]
    }, { env }).rules
    expect(rules.map((r) => r.handler)).toEqual(['npm', null, null, null, 'generic'])
  })

  it.each([
    ['DEBUG', 'debug'], ['info', 'info'], ['Warning', 'warn'], ['WARN', 'warn'], ['error', 'error'],
    ['CRITICAL', 'fatal'], ['fatal', 'fatal'], ['trace', 'trace'], ['silent', 'silent']
  ])('log level %s → %s', (given, level) => {
    expect(parseConfig({ logging: { level: given } }, { env }).logging.level).toBe(level)
  })

  it.each([
    [{ 'handlers.docker': 'oci' }], [{ 'handlers.pypi': 'pypi' }], [{ 'handlers.pip': 'pypi' }], [{ 'handlers.huggingface': 'hf' }],
    [{ 'handlers.hf': 'hf' }], [{ 'handlers.npm': 'npm' }], [{ 'handlers.conda': 'conda' }], [{ 'handlers.cran': 'cran' }],
    [{ 'handlers.r': 'cran' }], [{ oci: 'oci' }], [{ generic: 'generic' }], [{ PyPI: 'pypi' }]
  ])('handler %j', (pair) => {
    const [given, name] = Object.entries(pair)[0] ?? []
    expect(parseConfig({ rules: [{ name: 'x', pattern: '/x', upstream: 'https://e.example', handler: given }] }, { env }).rules[0]?.handler).toBe(name)
  })

  it('numbers may be quoted; chunk_size <= 0 means automatic (0)', () => {
    const config = parseConfig({ server: { port: '8082' }, rules: [{ name: 'x', pattern: '/x', upstream: 'https://e.example', chunk_size: -1, concurrency: '4' }] }, { env })
    expect(config.server.port).toBe(8082)
    expect(config.rules[0]?.chunk_size).toBe(0)
    expect(config.rules[0]?.concurrency).toBe(4)
  })

  it('a rule content_rewrite without content_types takes the global ones; header names are lower-cased', () => {
    const [rule] = parseConfig({
      content_rewrite: { content_types: ['text/html'] },
      rules: [{ name: 'x', pattern: '/x', upstream: 'https://e.example', content_rewrite: { targets: ['https://cdn.example/'] }, head_meta_headers: ['X-Repo-Commit'] }]
    }, { env }).rules
    expect(rule?.content_rewrite).toEqual({ content_types: ['text/html'], targets: ['https://cdn.example'] })
    expect(rule?.head_meta_headers).toEqual(['x-repo-commit'])
  })

  it('Python regex syntax in patterns is translated', () => {
    const [rule] = parseConfig({ rules: [{ name: 'x', pattern: '^/(?P<repo>[^/]+)/x\\Z', upstream: 'https://e.example' }] }, { env }).rules
    expect(rule?.pattern).toBe('^/(?<repo>[^/]+)/x$')
  })
})

describe('the result', () => {
  it('is deep-frozen', () => {
    const config = loadConfig({ env })
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.server)).toBe(true)
    expect(Object.isFrozen(config.rules)).toBe(true)
    expect(Object.isFrozen(config.rules[0])).toBe(true)
    expect(Object.isFrozen(config.content_rewrite.targets)).toBe(true)
    expect(() => { (config.server as { port: number }).port = 1 }).toThrow(TypeError)
    expect(() => { (config.rules as unknown[]).push({}) }).toThrow(TypeError)
  })

  it('shares nothing with its input or with other loads', () => {
    const input = { rules: [{ name: 'x', pattern: '/x', upstream: 'https://e.example', path_rewrite: [{ search: 'a', replace: 'b' }] }] }
    const config = parseConfig(input, { env })
    input.rules[0]!.path_rewrite[0]!.search = 'changed'
    expect(config.rules[0]?.path_rewrite[0]?.search).toBe('a')
    expect(Object.isFrozen(input.rules[0])).toBe(false)
    expect(loadConfig({ env })).not.toBe(loadConfig({ env }))
  })

  it('prints as YAML that loads back to the same configuration', () => {
    for (const config of [loadConfig({ env }), loadConfig({ file: fixture('seed-example.yaml'), env }), loadConfig({ file: fixture('seed-legacy.yaml'), env })]) {
      const yaml = configToYaml(config)
      expect(parseConfig(parse(yaml, { version: '1.1' }), { env })).toEqual(config)
      expect(loadConfig({ file: writeYaml('printed.yaml', yaml), env })).toEqual(config)
    }
  })
})
