/**
 * The distribution API paths a pull client sends, parsed (pure). Names are checked against the OCI
 * name grammar, except that the first component may be a registry host (`ghcr.io`, `localhost:5000`):
 * path-prefixed names (`/v2/ghcr.io/owner/img/...`) are how podman/skopeo-style mirrors name other
 * registries; the registry map decides later whether that first component is a registry.
 */

export type OciPath =
  | { readonly kind: 'ping' }
  | { readonly kind: 'token' }
  | { readonly kind: 'catalog' }
  | { readonly kind: 'manifest', readonly name: string, readonly reference: Reference }
  | { readonly kind: 'blob', readonly name: string, readonly digest: Digest }
  | { readonly kind: 'upload', readonly name: string }
  | { readonly kind: 'tags', readonly name: string }
  | { readonly kind: 'referrers', readonly name: string, readonly digest: Digest }
  /** Under /v2/ but not an API path, or a name or reference outside the grammar. */
  | { readonly kind: 'invalid', readonly reason: 'name' | 'reference' | 'digest' | 'path' }

export interface Digest {
  readonly algorithm: 'sha256' | 'sha512'
  /** Lower-case hex. */
  readonly hex: string
  /** `algorithm:hex`. */
  readonly value: string
}

export type Reference = { readonly kind: 'tag', readonly tag: string } | { readonly kind: 'digest', readonly digest: Digest }

/** Where the mirror's token endpoint lives: under /v2/, where no API path can collide with it. */
export const TOKEN_PATH = '/v2/token'

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const HOST_COMPONENT = /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?$/i
const TAG = /^\w[\w.-]{0,127}$/
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/
const MAX_NAME = 255

export function parseDigest (value: string): Digest | null {
  if (!DIGEST.test(value)) return null
  const [algorithm, hex] = value.split(':') as ['sha256' | 'sha512', string]
  return { algorithm, hex, value }
}

/** True for a repository name in the OCI grammar; `hostFirst` also lets the first component be a host. */
export function validName (name: string, hostFirst = true): boolean {
  if (name.length === 0 || name.length > MAX_NAME) return false
  const parts = name.split('/')
  return parts.every((p, i) => COMPONENT.test(p) || (hostFirst && i === 0 && parts.length > 1 && HOST_COMPONENT.test(p)))
}

function named (name: string): string | null {
  return validName(name) ? name : null
}

/** Parses a path (no query) under /v2/. */
export function parseOciPath (pathname: string): OciPath {
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'ping' }
  if (pathname === TOKEN_PATH) return { kind: 'token' }
  if (pathname === '/v2/_catalog') return { kind: 'catalog' }
  if (!pathname.startsWith('/v2/')) return { kind: 'invalid', reason: 'path' }
  const rest = pathname.slice(4)
  let m = /^(.+)\/manifests\/([^/]+)$/.exec(rest)
  if (m !== null) {
    const name = named(m[1] as string)
    if (name === null) return { kind: 'invalid', reason: 'name' }
    const ref = m[2] as string
    const digest = parseDigest(ref)
    if (digest !== null) return { kind: 'manifest', name, reference: { kind: 'digest', digest } }
    if (!TAG.test(ref)) return { kind: 'invalid', reason: 'reference' }
    return { kind: 'manifest', name, reference: { kind: 'tag', tag: ref } }
  }
  m = /^(.+)\/blobs\/uploads(?:\/.*)?$/.exec(rest)
  if (m !== null) {
    const name = named(m[1] as string)
    return name === null ? { kind: 'invalid', reason: 'name' } : { kind: 'upload', name }
  }
  m = /^(.+)\/(blobs|referrers)\/([^/]+)$/.exec(rest)
  if (m !== null) {
    const name = named(m[1] as string)
    if (name === null) return { kind: 'invalid', reason: 'name' }
    const digest = parseDigest(m[3] as string)
    if (digest === null) return { kind: 'invalid', reason: 'digest' }
    return m[2] === 'blobs' ? { kind: 'blob', name, digest } : { kind: 'referrers', name, digest }
  }
  m = /^(.+)\/tags\/list$/.exec(rest)
  if (m !== null) {
    const name = named(m[1] as string)
    return name === null ? { kind: 'invalid', reason: 'name' } : { kind: 'tags', name }
  }
  return { kind: 'invalid', reason: 'path' }
}
