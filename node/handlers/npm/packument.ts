import { canonicalUrl } from '../../fetch/identity.ts'
import { formatHint, parseDigests, verifiable } from './integrity.ts'

/**
 * Packument rewriting: every `"tarball"` URL that maps to the mirror becomes an absolute mirror URL
 * (npm needs absolute ones); integrity, shasum, signatures and all other bytes stay as upstream wrote
 * them. Returns the hints (canonical upstream tarball URL → digest) learned on the way.
 */

const TARBALL_VALUE = /("tarball"\s*:\s*)"((?:[^"\\]|\\.)*)"/g

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

export interface RewrittenPackument {
  readonly text: string
  readonly hints: Array<readonly [string, string]>
  /** Tarballs whose only published digest is sha1 (verified by it, keyed with their URL). */
  readonly sha1Only: number
}

export function rewritePackument (text: string, docUrl: URL, map: (absolute: URL) => string | null): RewrittenPackument {
  const hints: Array<readonly [string, string]> = []
  let sha1Only = 0
  let doc: unknown = null
  try { doc = JSON.parse(text) } catch { /* not JSON: nothing to learn, nothing to rewrite */ }
  if (!isObject(doc)) return { text, hints, sha1Only }
  const versions = isObject(doc.versions) ? Object.values(doc.versions) : [doc]
  for (const v of versions) {
    if (!isObject(v) || !isObject(v.dist) || typeof v.dist.tarball !== 'string') continue
    let url: URL
    try { url = new URL(v.dist.tarball, docUrl) } catch { continue }
    const digest = verifiable(parseDigests(v.dist.integrity, v.dist.shasum))
    if (digest?.algorithm === 'sha1') sha1Only++
    if (digest !== null) hints.push([`npm:${canonicalUrl(url)}`, formatHint(digest)])
  }
  const out = text.replace(TARBALL_VALUE, (whole, key: string, raw: string) => {
    let value: unknown
    try { value = JSON.parse(`"${raw}"`) } catch { return whole }
    if (typeof value !== 'string') return whole
    let url: URL
    try { url = new URL(value, docUrl) } catch { return whole }
    const mapped = map(url)
    return mapped === null ? whole : `${key}${JSON.stringify(mapped)}`
  })
  return { text: out, hints, sha1Only }
}
