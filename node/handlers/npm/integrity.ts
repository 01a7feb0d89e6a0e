import type { ExpectedDigest } from '../../fetch/identity.ts'

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

/** The strongest digest the fetch engine can verify (sha512, then sha256); sha1 alone is not enough. */
export function verifiable (d: TarballDigests): ExpectedDigest | null {
  if (d.sha512 !== null) return { algorithm: 'sha512', hex: d.sha512 }
  if (d.sha256 !== null) return { algorithm: 'sha256', hex: d.sha256 }
  return null
}

/** Stored hint form: `<algorithm>:<hex>`. */
export function formatHint (d: ExpectedDigest): string {
  return `${d.algorithm}:${d.hex}`
}

export function parseHint (value: string | undefined): ExpectedDigest | null {
  const m = value === undefined ? null : /^(sha512|sha256):([0-9a-f]+)$/.exec(value)
  if (m === null) return null
  return { algorithm: m[1] as 'sha512' | 'sha256', hex: m[2] as string }
}
