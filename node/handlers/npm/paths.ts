/** Shapes of npm registry paths and the packument representation a client asks for (pure). */

export type NpmPath =
  | { kind: 'packument', name: string }
  | { kind: 'tarball', name: string, file: string }

const NAME = /^(?:@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*$/i

function decode (s: string): string | null {
  try { return decodeURIComponent(s) } catch { return null }
}

/**
 * What a registry path (after the mount prefix) names: a packument (`/name`, `/@scope%2fname`,
 * `/@scope/name`, `/name/<version>`) or a tarball (`/name/-/file.tgz`, `/@scope/name/-/file.tgz`). Null for
 * everything else (`/-/v1/search`, audit, login, dist-tags), which is proxied.
 */
export function classifyNpmPath (pathname: string): NpmPath | null {
  if (pathname.startsWith('/-/')) return null
  const tar = /^\/((?:@[^/]+(?:\/|%2[fF]))?[^/@][^/]*)\/-\/([^/]+\.tgz)$/.exec(pathname)
  if (tar !== null) {
    const name = decode(tar[1] as string)
    const file = decode(tar[2] as string)
    return name !== null && file !== null && NAME.test(name) ? { kind: 'tarball', name, file } : null
  }
  const doc = /^\/((?:@[^/]+(?:\/|%2[fF]))?[^/@][^/]*)(?:\/[^/]+)?$/.exec(pathname)
  if (doc === null) return null
  const name = decode(doc[1] as string)
  return name !== null && NAME.test(name) ? { kind: 'packument', name } : null
}

export type PackumentFormat = 'corgi' | 'full'

export const CORGI = 'application/vnd.npm.install-v1+json'

/** What the mirror asks upstream for each format (pacote's own Accept for the abbreviated document). */
export const UPSTREAM_ACCEPT: Readonly<Record<PackumentFormat, string>> = {
  corgi: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*',
  full: 'application/json'
}

/** Whether a client with this `Accept` takes the format at all (none given: any; npm sends one). */
export function acceptsPackument (accept: string | undefined, format: PackumentFormat): boolean {
  if (accept === undefined) return true
  return accept.split(',').some(part => {
    const [type = '', ...params] = part.trim().toLowerCase().split(';')
    const q = params.map(p => p.trim()).find(p => p.startsWith('q='))
    const t = type.trim()
    return (t === '*/*' || t === 'application/*' || t === (format === 'corgi' ? CORGI : 'application/json')) && (q === undefined || Number(q.slice(2)) > 0)
  })
}

/** The abbreviated ("corgi") document when the client rates it at least as high as full JSON. */
export function choosePackumentFormat (accept: string | undefined): PackumentFormat {
  if (accept === undefined) return 'full'
  let corgi = 0
  let full = 0
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';')
    const q = params.map(p => p.trim()).find(p => p.startsWith('q='))
    const value = q === undefined ? 1 : Number(q.slice(2))
    if (type.trim() === CORGI) corgi = Math.max(corgi, value)
    else if (type.trim() === 'application/json') full = Math.max(full, value)
  }
  return corgi > 0 && corgi >= full ? 'corgi' : 'full'
}
