import type { FastifyRequest } from 'fastify'
import { describe, expect, it } from 'vitest'
import { mirrorBaseFor, publicBase } from '../../../node/http/mirror-base.ts'

const req = (headers: Record<string, string>): FastifyRequest => ({ headers }) as unknown as FastifyRequest

describe('mirror base', () => {
  it('normalises public_host', () => {
    expect(publicBase(null)).toBeNull()
    expect(publicBase('127.0.0.1:8081')).toBe('http://127.0.0.1:8081')
    expect(publicBase('https://mirror.example/sub/')).toBe('https://mirror.example/sub')
  })

  it.each([
    [{ host: 'localhost:8081' }, 'http://localhost:8081'],
    [{ host: '[::1]:8081' }, 'http://[::1]:8081'],
    [{ host: 'a:1', 'x-forwarded-proto': 'https' }, 'https://a:1'],
    [{ host: 'a:1', 'x-forwarded-host': 'mirror.lan, proxy.lan', 'x-forwarded-proto': 'HTTPS, http' }, 'https://mirror.lan'],
    [{}, 'http://127.0.0.1:8081'],
    [{ host: 'aimirror_cache:18103' }, 'http://aimirror_cache:18103'],
    [{ host: 'mirror.lan.' }, 'http://mirror.lan.'],
    [{ host: 'a', 'x-forwarded-host': 'my_proxy' }, 'http://my_proxy']
  ])('%o → %s', (headers, base) => {
    expect(mirrorBaseFor(req(headers), null, '127.0.0.1:8081')).toBe(base)
  })

  it('prefers public_host over any request header', () => {
    expect(mirrorBaseFor(req({ host: 'x:1', 'x-forwarded-host': 'y' }), 'http://pub:2', 'z:3')).toBe('http://pub:2')
  })

  it.each([
    [{ host: 'evil"><script>' }],
    [{ host: 'a/b' }],
    [{ host: 'a', 'x-forwarded-proto': 'javascript' }],
    [{ host: 'a', 'x-forwarded-host': 'user@host' }]
  ])('refuses %o', (headers) => {
    expect(() => mirrorBaseFor(req(headers), null, 'z:3')).toThrow(expect.objectContaining({ code: 'ERR_BAD_REQUEST' }))
  })
})
