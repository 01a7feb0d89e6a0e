import { zstdCompressSync, zstdDecompressSync } from 'node:zlib'
import type { RepodataCoding } from './paths.ts'

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

export function decodeRepodata (body: Buffer, coding: RepodataCoding): Buffer | null {
  if (coding === 'json') return body
  if (coding === 'zst') return zstdDecompressSync(body)
  return null
}

export function encodeRepodata (text: Buffer, coding: RepodataCoding): Buffer {
  return coding === 'zst' ? zstdCompressSync(text) : text
}

/** Replaces the first absolute base_url with `map(url)` (kept when map returns null). */
export function rewriteBaseUrl (text: string, map: (url: string) => string | null): string {
  return text.replace(BASE_URL, (whole, key: string, url: string) => {
    const mapped = map(url)
    return mapped === null ? whole : `${key}${JSON.stringify(mapped)}`
  })
}
