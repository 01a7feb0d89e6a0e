import { describe, expect, it } from 'vitest'
import { endToEndHeaders, groupHeaders } from '../../../node/http/headers.ts'

describe('endToEndHeaders', () => {
  it('drops hop-by-hop headers and those named by Connection, keeping repeats in order', () => {
    const raw = ['Host', 'a', 'Accept', 'x', 'Connection', 'Keep-Alive, X-Hop', 'Keep-Alive', 'timeout=5', 'X-Hop', '1',
      'Accept', 'y', 'Transfer-Encoding', 'chunked', 'TE', 'trailers', 'Trailer', 'X', 'Upgrade', 'h2c', 'Proxy-Authorization', 'p',
      'Proxy-Connection', 'keep-alive', 'Expect', '100-continue', 'Content-Length', '3', 'ETag', '"e"', 'Accept', 'z']
    expect(endToEndHeaders(raw)).toEqual(['Accept', 'x', 'Accept', 'y', 'Content-Length', '3', 'ETag', '"e"', 'Accept', 'z'])
    expect(endToEndHeaders(raw, ['etag'])).toEqual(['Accept', 'x', 'Accept', 'y', 'Content-Length', '3', 'Accept', 'z'])
  })
})

describe('groupHeaders', () => {
  it('lower-cases names and turns repeats into arrays', () => {
    expect(groupHeaders(['Link', 'a', 'ETag', '"e"', 'link', 'b'])).toEqual({ link: ['a', 'b'], etag: '"e"' })
  })
})
