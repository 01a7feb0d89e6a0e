import { promisify } from 'node:util'
import type { Transform as TransformStream } from 'node:stream'
import * as zlib from 'node:zlib'

type Transform = (buf: Buffer, options: zlib.ZlibOptions & zlib.BrotliOptions) => Promise<Buffer>

const gunzip = promisify(zlib.gunzip) as Transform
const inflate = promisify(zlib.inflate) as Transform
const inflateRaw = promisify(zlib.inflateRaw) as Transform
const brotli = promisify(zlib.brotliDecompress) as Transform
const zstd: Transform | null = typeof zlib.zstdDecompress === 'function'
  ? promisify(zlib.zstdDecompress) as unknown as Transform
  : null
const gzip = promisify(zlib.gzip)

/** `Content-Encoding` codings, in the order they were applied. Empty for identity. */
export function parseContentEncoding (value: string | undefined): string[] {
  if (value === undefined) return []
  return value.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity')
}

/** Whether every coding can be undone here. */
export function canDecode (codings: readonly string[]): boolean {
  return codings.every((c) => c === 'gzip' || c === 'x-gzip' || c === 'deflate' || c === 'br' || (c === 'zstd' && zstd !== null))
}

/**
 * Undoes `codings` (last applied first). `maxOutputLength` bounds each step, so a small compressed page
 * cannot expand into gigabytes; past it zlib throws (RangeError / ERR_BUFFER_TOO_LARGE).
 */
export async function decodeBody (body: Buffer, codings: readonly string[], maxOutputLength: number): Promise<Buffer> {
  const opts = { maxOutputLength }
  let out = body
  for (const coding of [...codings].reverse()) {
    if (coding === 'gzip' || coding === 'x-gzip') out = await gunzip(out, opts)
    else if (coding === 'br') out = await brotli(out, opts)
    else if (coding === 'zstd' && zstd !== null) out = await zstd(out, opts)
    else if (coding === 'deflate') {
      // "deflate" is zlib-wrapped by the spec, raw deflate by some servers.
      try { out = await inflate(out, opts) } catch { out = await inflateRaw(out, opts) }
    } else throw new Error(`unsupported content-coding ${coding}`)
  }
  return out
}

/**
 * A stream that undoes one content coding (lower case), undefined for one it cannot. gzip and "deflate"
 * share zlib's Unzip, which reads gzip and zlib-wrapped deflate alike; raw deflate it does not read.
 */
export function decoderFor (coding: string): TransformStream | undefined {
  if (coding === 'gzip' || coding === 'x-gzip' || coding === 'deflate') return zlib.createUnzip()
  if (coding === 'br') return zlib.createBrotliDecompress()
  if (coding === 'zstd' && typeof zlib.createZstdDecompress === 'function') return zlib.createZstdDecompress()
  return undefined
}

export async function gzipBody (body: Buffer): Promise<Buffer> {
  return await gzip(body)
}

/** Whether an `Accept-Encoding` header allows gzip (q > 0, directly or through `*`). */
export function acceptsGzip (acceptEncoding: string | undefined): boolean {
  if (acceptEncoding === undefined) return false
  let star = false
  for (const part of acceptEncoding.split(',')) {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';')
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    const allowed = q === undefined || Number(q.slice(2)) > 0
    if (coding.trim() === 'gzip' || coding.trim() === 'x-gzip') return allowed
    if (coding.trim() === '*') star = allowed
  }
  return star
}
