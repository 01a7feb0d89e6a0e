/**
 * Cache identity of an artifact. Content identity (a digest published by the ecosystem before the
 * download) wins: the same bytes from two URLs are stored once. Otherwise the key is the canonical
 * upstream URL, with signature and expiry query parameters stripped so a signed URL maps to a stable key.
 */

import { signatureParams } from '../signed-url.ts'

export interface ExpectedDigest {
  /**
   * `git-sha1`: git's blob id, sha1 of `blob <size>\0` + bytes (needs a download of known length).
   * `sha1`: plain sha1 (npm's `dist.shasum` of old packages); weak, so callers key such blobs by URL.
   */
  readonly algorithm: 'sha256' | 'sha512' | 'git-sha1' | 'sha1'
  /** Lower-case hex. */
  readonly hex: string
}

export interface BlobIdentity {
  /** Cache key in the index. */
  readonly key: string
  /** sha256 hex of the content when known in advance (content-addressed hit without any key entry). */
  readonly sha256: string | null
  /** Digest the downloaded bytes must match; a mismatch discards the download. */
  readonly expected: ExpectedDigest | null
}

/**
 * Canonical form of a URL for keying: lower-case host, no default port, no fragment, percent-escapes of
 * the path in upper case (RFC 3986 §6.2.2.1: `%c3%a9` is `%C3%A9`), signature params removed, params
 * sorted by name.
 */
export function canonicalUrl (input: URL | string): string {
  const url = new URL(String(input))
  url.hash = ''
  url.pathname = url.pathname.replace(/%[0-9a-f]{2}/gi, escape => escape.toUpperCase())
  const kept: Array<[string, string]> = []
  const signing = signatureParams(url.searchParams.keys())
  for (const [k, v] of url.searchParams) if (!signing.has(k.toLowerCase())) kept.push([k, v])
  // By name only: the values of a repeated name keep their order (servers often read the first).
  kept.sort((a, b) => (a[0] === b[0] ? 0 : a[0] < b[0] ? -1 : 1))
  url.search = ''
  for (const [k, v] of kept) url.searchParams.append(k, v)
  return url.toString()
}

export function urlIdentity (url: URL | string): BlobIdentity {
  return { key: 'url:' + canonicalUrl(url), sha256: null, expected: null }
}

const HEX = { sha256: /^[0-9a-f]{64}$/, sha512: /^[0-9a-f]{128}$/, 'git-sha1': /^[0-9a-f]{40}$/, sha1: /^[0-9a-f]{40}$/ }

export function digestIdentity (expected: ExpectedDigest): BlobIdentity {
  const hex = expected.hex.toLowerCase()
  if (!HEX[expected.algorithm].test(hex)) throw new TypeError(`invalid ${expected.algorithm} digest`)
  const normal = { algorithm: expected.algorithm, hex }
  return {
    key: `${expected.algorithm}:${hex}`,
    sha256: expected.algorithm === 'sha256' ? hex : null,
    expected: normal
  }
}

/** `<algorithm>:<hex>`: how a digest is written in the index, hints and errors. */
export function digestLabel (d: ExpectedDigest): string {
  return `${d.algorithm}:${d.hex}`
}

/** What a download of the blob hashes: sha256 (its content address) and the algorithm of the digest expected. */
export function hashAlgorithms (identity: BlobIdentity): string[] {
  const expected = identity.expected?.algorithm
  return expected === undefined || expected === 'sha256' ? ['sha256'] : ['sha256', expected]
}
