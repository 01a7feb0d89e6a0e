/** Shapes of CRAN-like repository paths (pure). */

export type CranPath =
  | { kind: 'index' }
  | { kind: 'package', archive: string | null }

/**
 * What a repository path asks for: an index (`PACKAGES`, `PACKAGES.gz`, `PACKAGES.rds`, other `.rds`
 * such as `Meta/archive.rds`), a package file (source tarball or binary) — with the `Archive/<pkg>/`
 * path a superseded source tarball moves to — or null (anything else is left to the rule's strategy).
 */
export function classifyCranPath (pathname: string): CranPath | null {
  const file = pathname.slice(pathname.lastIndexOf('/') + 1)
  if (/^PACKAGES(?:\.gz|\.rds)?$/.test(file) || file.endsWith('.rds')) return { kind: 'index' }
  if (!/\.(?:tar\.gz|tgz|zip)$/.test(file)) return null
  const src = /^(.*\/src\/contrib)\/([A-Za-z][\w.]*)_([^/_]+)\.tar\.gz$/.exec(pathname)
  return { kind: 'package', archive: src === null ? null : `${src[1] as string}/Archive/${src[2] as string}/${file}` }
}

/**
 * The R version and platform of an R User-Agent (`R (4.4.1 x86_64-pc-linux-gnu x86_64 linux-gnu)`),
 * which Posit Package Manager uses to pick binaries; null for other clients.
 */
export function rPlatform (userAgent: string | undefined): string | null {
  const m = userAgent === undefined ? null : /\bR \(([^)]+)\)/.exec(userAgent)
  return m === null ? null : (m[1] as string).trim().replace(/\s+/g, ' ')
}

/** Repositories that answer differently per R version/platform (Posit Package Manager). */
export function variesByUserAgent (url: URL): boolean {
  return url.hostname.startsWith('packagemanager.') || url.hostname.startsWith('p3m.') || url.pathname.includes('/__linux__/')
}
