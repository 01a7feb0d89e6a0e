import { describe, expect, it, vi } from 'vitest'
import { clientBaseUrl, clientSettings } from '../../../cli/client-settings.ts'
import { printEnv } from '../../../cli/env.ts'
import { parseConfig } from '../../../config/load.ts'
import { createRouter } from '../../../node/router/router.ts'
import type { Config } from '../../../config/types.ts'

function settings (config: Config, base = 'http://127.0.0.1:8081'): string {
  const router = createRouter(config.rules)
  return clientSettings(config, base, (path) => router.match(path)?.rule ?? null)
}

describe('clientBaseUrl', () => {
  const env = { HOME: '/home/u' }
  it.each([
    [{ server: { host: '127.0.0.1' } }, 8081, 'http://127.0.0.1:8081'],
    [{ server: { host: '0.0.0.0' } }, 9000, 'http://127.0.0.1:9000'],
    [{ server: { host: '::' } }, 8081, 'http://[::1]:8081'],
    [{ server: { host: '::1' } }, 8081, 'http://[::1]:8081'],
    [{ server: { public_host: 'mirror.lan:8081' } }, 1, 'http://mirror.lan:8081'],
    [{ server: { public_host: 'https://mirror.example.com/' } }, 1, 'https://mirror.example.com']
  ])('%j on port %i → %s', (input, port, expected) => {
    expect(clientBaseUrl(parseConfig(input, { env }), port)).toBe(expected)
  })
})

describe('clientSettings', () => {
  it('covers every ecosystem of the embedded defaults, once each', () => {
    const text = settings(parseConfig({}, { env: { HOME: '/h' } }))
    for (const needle of [
      'global.index-url http://127.0.0.1:8081/simple/', 'UV_DEFAULT_INDEX=', '/pytorch/whl/', '/nvidia/',
      '"registry-mirrors": ["http://127.0.0.1:8081"]', '[host."http://127.0.0.1:8081"]', 'capabilities = ["pull", "resolve"]',
      'HF_ENDPOINT=http://127.0.0.1:8081', 'hubUrl', 'options(repos = c(CRAN = "http://127.0.0.1:8081"))',
      '- http://127.0.0.1:8081/conda-forge', '- http://127.0.0.1:8081/bioconda', 'npm config set registry http://127.0.0.1:8081/npm/',
      '/releases/download/'
    ]) expect(text).toContain(needle)
    expect(text.match(/\/conda-forge$/gm)).toHaveLength(1)
    expect(text).not.toContain('trusted-host') // localhost is a secure origin for pip
  })

  it('tells pip to trust a LAN address', () => {
    const text = settings(parseConfig({}, { env: { HOME: '/h' } }), 'http://10.1.2.3:8081')
    expect(text).toContain('global.trusted-host 10.1.2.3:8081')
    // Names that only start like this machine's are other hosts.
    expect(settings(parseConfig({}, { env: { HOME: '/h' } }), 'http://localhost.example.com:8081')).toContain('global.trusted-host localhost.example.com:8081')
    expect(settings(parseConfig({}, { env: { HOME: '/h' } }), 'http://127.0.0.1.nip.io:8081')).toContain('global.trusted-host 127.0.0.1.nip.io:8081')
    expect(settings(parseConfig({}, { env: { HOME: '/h' } }), 'http://localhost:8081')).not.toContain('trusted-host')
  })

  it('advertises only what the rules serve: a catch-all does not count as every ecosystem', () => {
    const config = parseConfig({
      rules: [
        { name: 'hf', pattern: '/.*/resolve/.+', upstream: 'https://huggingface.co', strategy: 'parallel' },
        { name: 'default', pattern: '.*', upstream: 'https://pypi.org', strategy: 'proxy' }
      ]
    }, { env: { HOME: '/h' } })
    const text = settings(config)
    expect(text).toContain('HF_ENDPOINT')
    expect(text).toContain('/simple/')
    expect(text).not.toContain('registry-mirrors')
    expect(text).not.toContain('CRAN')
    expect(text).not.toContain('releases/download')
  })

  it('lists each generic prefix rule with where it leads', () => {
    const config = parseConfig({
      rules: [
        { name: 'art', path_prefix: '/art/', upstream: 'https://art.example.com/repo', strip_prefix: true, strategy: 'parallel' },
        { name: 'files', path_prefix: '/files/', upstream: 'https://files.example.com', strategy: 'parallel' }
      ]
    }, { env: { HOME: '/h' } })
    const text = settings(config)
    expect(text).toContain('other downloads (generic rules):')
    expect(text).toContain('http://127.0.0.1:8081/art/<path>  (https://art.example.com/repo/<path>)')
    expect(text).toContain('http://127.0.0.1:8081/files/<path>  (https://files.example.com/files/<path>)')
  })
})

describe('aimirror env', () => {
  it('says why it prints nothing when no rule serves a client it knows', () => {
    const out: string[] = []
    const err: string[] = []
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out.push(String(c)); return true })
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { err.push(String(c)); return true })
    try {
      printEnv(parseConfig({ rules: [{ name: 'blobs', pattern: '\\.bin$', upstream: 'https://example.com', strategy: 'parallel' }] }, { env: { HOME: '/h' } }))
    } finally {
      o.mockRestore()
      e.mockRestore()
    }
    expect(out).toEqual([])
    expect(err.join('')).toMatch(/no rule serves a client this command knows/)
  })
})
