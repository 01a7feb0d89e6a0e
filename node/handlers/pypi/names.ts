/** PEP 503 name normalisation and the shapes of PyPI-style request paths (pure). */

export function normalizeName (name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase()
}

/** What a path under a Python index mount asks for. */
export type PypiPathKind = 'file' | 'core-metadata' | 'json-api' | 'index'

const DIST = /\.(?:whl|tar\.gz|tar\.bz2|tar\.xz|tgz|zip|egg|exe|msi)$/i

export function classifyPath (pathname: string): PypiPathKind {
  if (/\/pypi\/[^/]+\/(?:[^/]+\/)?json$/.test(pathname)) return 'json-api'
  if (pathname.endsWith('.metadata') && DIST.test(pathname.slice(0, -'.metadata'.length))) return 'core-metadata'
  if (DIST.test(pathname)) return 'file'
  return 'index'
}

/**
 * Where a project page under `/simple/` should be served from when its name is not in normal form or
 * the trailing slash is missing (clients resolve relative links against it); null when it already is.
 */
export function canonicalProjectPath (pathname: string): string | null {
  const m = /^(.*\/simple)\/([^/]+)(\/?)$/.exec(pathname)
  if (m === null) return null
  const [, root = '', name = '', slash = ''] = m
  let decoded: string
  try { decoded = decodeURIComponent(name) } catch { return null }
  const normal = normalizeName(decoded)
  if (normal === name && slash === '/') return null
  if (!/^[a-z0-9-]+$/.test(normal)) return null
  return `${root}/${normal}/`
}

/** The published digest in a link fragment (`#sha256=<hex>`), lower-case; null for none or another algorithm. */
export function sha256FromFragment (hash: string): string | null {
  const m = /^#?sha256=([0-9a-fA-F]{64})$/.exec(hash)
  return m === null ? null : (m[1] as string).toLowerCase()
}

/** `sha256=<hex>` (PEP 658 attribute value) → hex, else null (`true`, other algorithms). */
export function sha256FromAttr (value: string | undefined): string | null {
  if (value === undefined) return null
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(value.trim())
  return m === null ? null : (m[1] as string).toLowerCase()
}
