import * as zlib from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { acceptsGzip, canDecode, decodeBody, parseContentEncoding } from '../../../node/rewrite/codec.ts'

const text = Buffer.from('<a href="https://files.pythonhosted.org/x">x</a>'.repeat(50))

describe('content codings', () => {
  it('parses Content-Encoding lists', () => {
    expect(parseContentEncoding(undefined)).toEqual([])
    expect(parseContentEncoding('identity')).toEqual([])
    expect(parseContentEncoding('GZIP, br')).toEqual(['gzip', 'br'])
    expect(canDecode(['gzip', 'br', 'deflate', 'x-gzip'])).toBe(true)
    expect(canDecode(['compress'])).toBe(false)
  })

  it.each([
    ['gzip', zlib.gzipSync(text)],
    ['x-gzip', zlib.gzipSync(text)],
    ['br', zlib.brotliCompressSync(text)],
    ['deflate', zlib.deflateSync(text)],
    ['deflate', zlib.deflateRawSync(text)],
    ['zstd', zlib.zstdCompressSync(text)]
  ])('decodes %s', async (coding, body) => {
    expect((await decodeBody(body, [coding], 1 << 20)).equals(text)).toBe(true)
  })

  it('undoes stacked codings in reverse order', async () => {
    const body = zlib.brotliCompressSync(zlib.gzipSync(text))
    expect((await decodeBody(body, ['gzip', 'br'], 1 << 20)).equals(text)).toBe(true)
  })

  it('refuses to expand past the limit', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(4 << 20))
    await expect(decodeBody(bomb, ['gzip'], 1 << 20)).rejects.toThrow()
  })

  it.each([
    [undefined, false],
    ['gzip, deflate', true],
    ['br;q=1.0, gzip;q=0.8', true],
    ['gzip;q=0', false],
    ['identity', false],
    ['*', true],
    ['*;q=0', false],
    ['br, *;q=0.1', true]
  ])('Accept-Encoding %s allows gzip: %s', (value, expected) => {
    expect(acceptsGzip(value)).toBe(expected)
  })
})
