import { pipeline, Readable } from 'node:stream'
import zlib from 'node:zlib'
import type { RepodataCoding } from './paths.ts'
import { decoderFor } from './repodata-index.ts'

/**
 * Repodata v2 (CEP-15) may name where packages live with an absolute `info.base_url`; one that points
 * off the mirror is rewritten so clients fetch packages through it. Only that value changes.
 */

const BASE_URL = /("base_url"\s*:\s*)"(https?:\/\/[^"\\]*)"/

const ANY_BASE_URL = /"base_url"\s*:\s*"([^"\\]*)"/

/** The absolute base_url in the first bytes of a decoded repodata document, if any. */
export function findAbsoluteBaseUrl (head: string): string | null {
  const m = BASE_URL.exec(head)
  return m === null ? null : m[2] as string
}

/** The base_url in the first bytes of a decoded repodata document, absolute or relative, if any. */
export function findBaseUrl (head: string): string | null {
  return ANY_BASE_URL.exec(head)?.[1] ?? null
}

/**
 * The repodata (plain or zstd) with its first absolute base_url replaced by `map(url)`, streamed: the base
 * is looked for in the first `headBytes` decoded bytes only (the `info` block, which writers put first),
 * the rest passes through, so a document of any size is rewritten in the memory of its head.
 */
export async function * rewriteRepodataBaseUrl (source: Readable, coding: Exclude<RepodataCoding, 'bz2'>, map: (url: string) => string | null,
  headBytes: number): AsyncGenerator<Buffer> {
  const decoder = decoderFor(coding)
  if (decoder === undefined) throw new Error(`repodata coding ${coding} cannot be decoded here`)
  const encoder = coding === 'zst' ? zlib.createZstdCompress() : null
  const decoded: Readable = decoder === null ? source : pipeline(source, decoder, () => {})
  async function * text (): AsyncGenerator<Buffer> {
    let head: Buffer[] = []
    let size = 0
    for await (const chunk of decoded as AsyncIterable<Buffer>) {
      if (head.length === 0 && size >= headBytes) {
        yield chunk
        continue
      }
      head.push(chunk)
      size += chunk.length
      if (size < headBytes) continue
      yield Buffer.from(rewriteBaseUrl(Buffer.concat(head).toString('latin1'), map), 'latin1')
      head = []
    }
    if (head.length > 0) yield Buffer.from(rewriteBaseUrl(Buffer.concat(head).toString('latin1'), map), 'latin1')
  }
  try {
    yield * (encoder === null ? text() : pipeline(Readable.from(text()), encoder, () => {})) as AsyncIterable<Buffer>
  } finally {
    source.destroy()
    decoder?.destroy()
    encoder?.destroy()
  }
}

/** Replaces the first absolute base_url with `map(url)` (kept when map returns null). */
export function rewriteBaseUrl (text: string, map: (url: string) => string | null): string {
  return text.replace(BASE_URL, (whole, key: string, url: string) => {
    const mapped = map(url)
    return mapped === null ? whole : `${key}${JSON.stringify(mapped)}`
  })
}
