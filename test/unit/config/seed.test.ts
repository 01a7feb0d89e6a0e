import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../../config/load.ts'
import type { Rule } from '../../../config/types.ts'
import { fixture } from './helpers.ts'

// The seed project's config.yaml files (its README example and an older layout) must load unchanged.
const env = { HOME: '/home/test' }

function byName (rules: readonly Rule[]): Map<string, Rule> {
  return new Map(rules.map((r) => [r.name, r]))
}

describe('seed README example', () => {
  const file = fixture('seed-example.yaml')
  const config = loadConfig({ file, env })
  const rules = byName(config.rules)

  it('is the seed file with its comments', () => {
    const text = readFileSync(file, 'utf8')
    expect(text).toContain('# fast_proxy 配置文件')
    expect(text).toContain('handler: handlers.docker # 特殊处理模块路径')
  })

  it('keeps its server, cache and logging settings, defaults filling the rest', () => {
    expect(config.server).toEqual({
      host: '0.0.0.0',
      port: 8081,
      upstream_proxy: null,
      public_host: '127.0.0.1:8081',
      max_concurrent_downloads: 100,
      connect_timeout_s: 10,
      read_timeout_s: 30,
      shutdown_timeout_s: 10
    })
    expect(config.cache).toMatchObject({ dir: '/data/fast_proxy/cache', max_size_gb: 100, lru_enabled: true, chunk_ttl_hours: 24 })
    expect(config.logging).toEqual({ level: 'info', file: '/data/fast_proxy/fast_proxy.log' })
  })

  it('keeps its rules, in order, replacing the default rules', () => {
    expect(config.rules.map((r) => r.name)).toEqual(['docker-blob', 'docker-registry', 'pip-packages', 'r-package', 'huggingface-files', 'huggingface-api', 'default'])
  })

  it('normalises each rule', () => {
    expect(rules.get('docker-blob')).toMatchObject({
      pattern: '/v2/.*/blobs/sha256:[a-f0-9]+', path_prefix: null, upstream: 'https://registry-1.docker.io',
      strategy: 'parallel', min_size: 1, concurrency: 20, chunk_size: 0, handler: 'oci'
    })
    expect(rules.get('docker-registry')).toMatchObject({ pattern: '/v2/.*', strategy: 'proxy', handler: 'oci' })
    expect(rules.get('pip-packages')).toMatchObject({ pattern: '/packages/.+\\.(whl|tar\\.gz|zip)$', chunk_size: 5242880, handler: 'pypi' })
    expect(rules.get('r-package')).toMatchObject({ upstream: 'https://cran.r-project.org', min_size: 102400, handler: 'cran' })
    expect(rules.get('huggingface-files')).toMatchObject({
      pattern: '/.*/(blob|resolve)/[^/]+/.+',
      strategy: 'parallel',
      min_size: 102400,
      chunk_size: 10485760,
      cache_key_source: 'original',
      path_rewrite: [{ search: '/blob/', replace: '/resolve/' }],
      head_meta_headers: ['x-repo-commit', 'x-linked-etag', 'x-linked-size', 'etag'],
      handler: 'hf'
    })
    expect(rules.get('huggingface-api')).toMatchObject({ strategy: 'proxy', handler: 'hf' })
    expect(rules.get('default')).toMatchObject({
      pattern: '.*',
      upstream: 'https://pypi.org',
      content_rewrite: {
        content_types: ['text/html', 'application/json', 'application/vnd.pypi.simple'],
        targets: ['https://files.pythonhosted.org']
      }
    })
  })
})

describe('older seed config (header_rewrite, docker-auth rule)', () => {
  const config = loadConfig({ file: fixture('seed-legacy.yaml'), env })
  const rules = byName(config.rules)

  it('loads with its rules in order', () => {
    expect(config.rules.map((r) => r.name)).toEqual(['docker-blob', 'docker-registry', 'docker-auth', 'pip-packages', 'r-package', 'huggingface-files', 'huggingface-api', 'default'])
  })

  it('keeps header_rewrite and the token rule', () => {
    expect(rules.get('docker-registry')?.header_rewrite).toEqual({ realm: 'https://auth.docker.io/token', service: 'registry.docker.io' })
    expect(rules.get('docker-registry')?.handler).toBe('oci')
    expect(rules.get('docker-auth')).toMatchObject({ pattern: '/token.*', upstream: 'https://auth.docker.io', strategy: 'proxy', handler: null, header_rewrite: null })
    expect(rules.get('docker-blob')?.chunk_size).toBe(10485760)
    expect(rules.get('huggingface-files')?.head_meta_headers).toEqual([])
  })
})
