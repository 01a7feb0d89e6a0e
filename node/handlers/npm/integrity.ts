import { canonicalUrl, digestIdentity, digestLabel } from '../../fetch/identity.ts'
import type { BlobIdentity, ExpectedDigest } from '../../fetch/identity.ts'

/** Digests a packument publishes for a tarball: SRI `dist.integrity` (possibly several) and hex `dist.shasum`. */
export interface TarballDigests {
  readonly sha512: string | null
  readonly sha256: string | null
  readonly sha1: string | null
}

function hexOf (b64: string, bytes: number): string | null {
  const buf = Buffer.from(b64, 'base64')
  return buf.length === bytes ? buf.toString('hex') : null
}

export function parseDigests (integrity: unknown, shasum: unknown): TarballDigests {
  let sha512: string | null = null
  let sha256: string | null = null
  let sha1: string | null = null
  if (typeof integrity === 'string') {
    for (const token of integrity.trim().split(/\s+/)) {
      const m = /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/=_-]+)(?:\?.*)?$/.exec(token)
      if (m === null) continue
      const b64 = (m[2] as string).replace(/-/g, '+').replace(/_/g, '/')
      if (m[1] === 'sha512') sha512 ??= hexOf(b64, 64)
      else if (m[1] === 'sha256') sha256 ??= hexOf(b64, 32)
      else if (m[1] === 'sha1') sha1 ??= hexOf(b64, 20)
    }
  }
  if (typeof shasum === 'string' && /^[0-9a-fA-F]{40}$/.test(shasum)) sha1 ??= shasum.toLowerCase()
  return { sha512, sha256, sha1 }
}

/**
 * The strongest digest published (sha512, then sha256, then sha1: packages published before npm had
 * `integrity` carry only `dist.shasum`, and are verified by it rather than not at all).
 */
export function verifiable (d: TarballDigests): ExpectedDigest | null {
  if (d.sha512 !== null) return { algorithm: 'sha512', hex: d.sha512 }
  if (d.sha256 !== null) return { algorithm: 'sha256', hex: d.sha256 }
  if (d.sha1 !== null) return { algorithm: 'sha1', hex: d.sha1 }
  return null
}

/**
 * Cache identity of a tarball at `url` whose packument published `digest`. sha512/sha256 key by content
 * (the same bytes from two registries are one entry). A sha1 is verified but keyed together with the URL:
 * sha1 collisions can be made, and a colliding tarball published elsewhere must not be served for this
 * one. The blob itself is stored by the sha256 computed on the way in either way.
 */
export function tarballIdentity (url: URL, digest: ExpectedDigest): BlobIdentity {
  const identity = digestIdentity(digest)
  if (digest.algorithm !== 'sha1') return identity
  return { ...identity, key: `${identity.key}@${canonicalUrl(url)}` }
}

/** Stored hint form: `<algorithm>:<hex>`. */
export function formatHint (d: ExpectedDigest): string {
  return digestLabel(d)
}

export function parseHint (value: string | undefined): ExpectedDigest | null {
  const m = value === undefined ? null : /^(?:(sha512):([0-9a-f]{128})|(sha256):([0-9a-f]{64})|(sha1):([0-9a-f]{40}))$/.exec(value)
  if (m === null) return null
  const [algorithm, hex] = m.slice(1).filter(s => s !== undefined) as ['sha512' | 'sha256' | 'sha1', string]
  return { algorithm, hex }
}
