import { describe, expect, it } from 'vitest'
import { canonicalUrl, digestIdentity, urlIdentity } from '../../../node/fetch/identity.ts'

describe('cache identity', () => {
  const cases: Array<[string, string]> = [
    ['https://CDN.example.com:443/a/b.bin?X-Amz-Signature=abc&X-Amz-Expires=300&v=2#frag', 'https://cdn.example.com/a/b.bin?v=2'],
    ['https://h/x?b=2&a=1', 'https://h/x?a=1&b=2'],
    ['https://h/x?Expires=1&Signature=s&Key-Pair-Id=k', 'https://h/x'],
    ['https://h/x?sv=1&sig=2&se=3&keep=yes', 'https://h/x?keep=yes'],
    ['https://h/x?sig=2&exp=3&v=1', 'https://h/x?v=1'],
    ['https://h/x?token=t&expires=9', 'https://h/x'],
    // Not signed: the same names then name different files.
    ['https://h/dl?exp=B', 'https://h/dl?exp=B'],
    ['https://h/dl?st=2&sp=r', 'https://h/dl?sp=r&st=2'],
    ['https://h/dl?token=B', 'https://h/dl?token=B'],
    ['https://h/dl?Expires=1&policy=p', 'https://h/dl?Expires=1&policy=p'],
    ['https://h/x?X-Amz-Date=1&v=2', 'https://h/x?X-Amz-Date=1&v=2'],
    // One file however its escapes are written.
    ['https://h/uni-%c3%a9.bin', 'https://h/uni-%C3%A9.bin'],
    ['https://h/uni-é.bin', 'https://h/uni-%C3%A9.bin']
  ]
  for (const [input, out] of cases) {
    it(`canonical ${input}`, () => { expect(canonicalUrl(input)).toBe(out) })
  }
  it('a repeated parameter keeps the order of its values (servers often read the first)', () => {
    expect(canonicalUrl('https://h/f?v=1&v=2')).not.toBe(canonicalUrl('https://h/f?v=2&v=1'))
    expect(canonicalUrl('https://h/f?b=1&v=2&a=3&v=1')).toBe('https://h/f?a=3&b=1&v=2&v=1')
  })
  it('signed variants of one URL share a key', () => {
    expect(urlIdentity('https://h/f?X-Amz-Signature=1').key).toBe(urlIdentity('https://h/f?X-Amz-Signature=2').key)
  })
  it('digest identity is keyed by the digest and validates it', () => {
    const hex = 'AB'.repeat(32)
    const id = digestIdentity({ algorithm: 'sha256', hex })
    expect(id.key).toBe(`sha256:${hex.toLowerCase()}`)
    expect(id.sha256).toBe(hex.toLowerCase())
    expect(() => digestIdentity({ algorithm: 'sha256', hex: 'xyz' })).toThrow()
    expect(digestIdentity({ algorithm: 'sha512', hex: 'a'.repeat(128) }).sha256).toBeNull()
  })
})
