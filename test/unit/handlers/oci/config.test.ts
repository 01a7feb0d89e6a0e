import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../../../config/errors.ts'
import { parseConfig } from '../../../../config/load.ts'

const env = { HOME: '/home/test' }

function problems (input: unknown): readonly string[] {
  try {
    parseConfig(input, { env })
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

describe('oci configuration section', () => {
  it('has Docker Hub and the other well-known registries by default, and tokens of an hour', () => {
    const { oci } = parseConfig({}, { env })
    expect(oci.registries['docker.io']).toBe('https://registry-1.docker.io')
    expect(Object.keys(oci.registries)).toEqual(expect.arrayContaining(['ghcr.io', 'quay.io', 'nvcr.io', 'registry.k8s.io', 'registry.ollama.ai']))
    expect(oci.token_ttl_s).toBe(3600)
    expect(oci.access_check_ttl_s).toBe(60)
  })

  it('takes a file map in place of the default one, keeping the other keys', () => {
    const { oci } = parseConfig({ oci: { registries: { 'registry.local:5000': 'http://10.0.0.5:5000/' } } }, { env })
    expect(oci.registries).toEqual({ 'registry.local:5000': 'http://10.0.0.5:5000' })
    expect(oci.token_ttl_s).toBe(3600)
  })

  it.each([
    [{ oci: { token_ttl_s: 30 } }, 'oci.token_ttl_s'],
    [{ oci: { registries: { 'bad host': 'https://x.example' } } }, 'oci.registries'],
    [{ oci: { registries: { 'x.example': 'ftp://x.example' } } }, 'oci.registries'],
    [{ oci: { registries: ['ghcr.io'] } }, 'oci.registries'],
    [{ oci: { acces_check_ttl_s: 5 } }, 'oci.acces_check_ttl_s']
  ])('%j is refused at %s', (input, where) => {
    const found = problems(input)
    expect(found.some(p => p.startsWith(where)), found.join('\n')).toBe(true)
  })
})
