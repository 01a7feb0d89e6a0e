import { canonicalUrl } from '../../fetch/identity.ts'
import { jsonString, scanJson } from '../../metadata/json-scan.ts'
import type { JsonPath, JsonVisitor } from '../../metadata/json-scan.ts'
import { learnAlong } from '../../metadata/learn-along.ts'
import { formatHint, parseDigests, verifiable } from './integrity.ts'

/**
 * Packument rewriting: every `"tarball"` URL that maps to the mirror becomes an absolute mirror URL
 * (npm needs absolute ones); integrity, shasum, signatures and all other bytes stay as upstream wrote
 * them. Hints (canonical upstream tarball URL → digest) are learnt on the way. Streamed: a packument of
 * any size is rewritten in the memory of one `dist` object.
 */

/** Canonical upstream tarball URL → `<algorithm>:<hex>`. */
export type TarballHint = readonly [string, string]

const DIST_FIELDS: ReadonlySet<string | number | undefined> = new Set(['tarball', 'integrity', 'shasum'])

/** `versions.<v>.dist`, or `dist` of a single-version document. */
function isDist (path: JsonPath, length = path.length): boolean {
  if (path[length - 1] !== 'dist') return false
  return length === 1 || (length === 3 && path[0] === 'versions')
}

class PackumentVisitor implements JsonVisitor {
  readonly hints: TarballHint[] = []
  private dist = new Map<string, string>()
  private readonly docUrl: URL
  private readonly map: (absolute: URL) => string | null

  constructor (docUrl: URL, map: (absolute: URL) => string | null) {
    this.docUrl = docUrl
    this.map = map
  }

  readonly wants = (path: JsonPath): boolean => {
    const key = path.at(-1)
    return key === 'tarball' || (DIST_FIELDS.has(key) && isDist(path, path.length - 1))
  }

  readonly value = (path: JsonPath, raw: string): string | undefined => {
    const value = jsonString(raw)
    if (value === null) return undefined
    const key = path.at(-1) as string
    if (isDist(path, path.length - 1)) this.dist.set(key, value)
    if (key !== 'tarball') return undefined
    const url = URL.parse(value, this.docUrl.href)
    const mapped = url === null ? null : this.map(url)
    return mapped === null ? undefined : JSON.stringify(mapped)
  }

  readonly close = (path: JsonPath): void => {
    if (!isDist(path)) return
    const dist = this.dist
    this.dist = new Map()
    const tarball = dist.get('tarball')
    const url = tarball === undefined ? null : URL.parse(tarball, this.docUrl.href)
    if (url === null) return
    const digest = verifiable(parseDigests(dist.get('integrity'), dist.get('shasum')))
    if (digest !== null) this.hints.push([`npm:${canonicalUrl(url)}`, formatHint(digest)])
  }

}

/** The packument with its tarballs on the mirror; `learn` gets the tarballs' published digests as they are read. */
export async function * rewritePackument (source: AsyncIterable<Buffer>, docUrl: URL, map: (absolute: URL) => string | null,
  learn: (hints: TarballHint[]) => Promise<void>): AsyncGenerator<Buffer> {
  const visitor = new PackumentVisitor(docUrl, map)
  yield * learnAlong(scanJson(source, visitor), visitor.hints, learn)
}
