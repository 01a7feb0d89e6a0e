import { jsonString, scanJson } from '../../metadata/json-scan.ts'
import type { JsonPath, JsonVisitor } from '../../metadata/json-scan.ts'
import type { FileFacts, LinkMap } from './file-facts.ts'
import { learnAlong } from '../../metadata/learn-along.ts'
import { sha256FromFragment } from './names.ts'

/**
 * PEP 691 JSON pages (`files[].url`) and the legacy JSON API (`urls[].url`, `releases.*[].url`): only the
 * `"url"` string values change; hashes, unknown keys, key order and formatting stay as upstream wrote them.
 * Streamed: a page of any size is rewritten in the memory of one file entry.
 */

/** Objects whose sha256 a file entry publishes, in the order they are trusted. */
const FILE_DIGESTS = ['hashes', 'digests'] as const
const METADATA_DIGESTS = ['core-metadata', 'dist-info-metadata'] as const
const DIGEST_HOLDERS: ReadonlySet<string | number | undefined> = new Set([...FILE_DIGESTS, ...METADATA_DIGESTS])

/** Length of the file entry's own path when `path` starts with one (`files[i]`, `urls[i]`, `releases.v[i]`), else 0. */
function fileEntryDepth (path: JsonPath): number {
  const first = path[0]
  if ((first === 'files' || first === 'urls') && typeof path[1] === 'number') return 2
  if (first === 'releases' && typeof path[1] === 'string' && typeof path[2] === 'number') return 3
  return 0
}

const sha256Hex = (v: string | undefined): string | null => v !== undefined && /^[0-9a-fA-F]{64}$/.test(v) ? v.toLowerCase() : null

/** What one file entry said so far. */
interface EntryFields {
  url?: string
  size?: number
  digests: Map<string, string>
}

class PageVisitor implements JsonVisitor {
  readonly files: FileFacts[] = []
  private entry: EntryFields = { digests: new Map() }
  private readonly pageUrl: URL
  private readonly map: LinkMap

  constructor (pageUrl: URL, map: LinkMap) {
    this.pageUrl = pageUrl
    this.map = map
  }

  readonly wants = (path: JsonPath): boolean => {
    const key = path.at(-1)
    if (key === 'url') return true
    const depth = fileEntryDepth(path)
    if (depth === 0) return false
    if (path.length === depth + 1) return key === 'size'
    return path.length === depth + 2 && key === 'sha256' && DIGEST_HOLDERS.has(path[depth])
  }

  readonly value = (path: JsonPath, raw: string): string | undefined => {
    const depth = fileEntryDepth(path)
    const key = path.at(-1)
    if (depth > 0 && path.length === depth + 1 && key === 'size') {
      const size = Number(raw)
      if (Number.isSafeInteger(size) && size >= 0) this.entry.size = size
      return undefined
    }
    const text = jsonString(raw)
    if (text === null) return undefined
    if (key === 'sha256') {
      if (depth > 0) this.entry.digests.set(path[depth] as string, text)
      return undefined
    }
    if (depth > 0 && path.length === depth + 1) this.entry.url = text
    const mapped = this.mapped(text)
    return mapped === null ? undefined : JSON.stringify(mapped.href)
  }

  readonly close = (path: JsonPath): void => {
    if (path.length === 0 || fileEntryDepth(path) !== path.length) return
    const entry = this.entry
    this.entry = { digests: new Map() }
    if (entry.url === undefined) return
    const absolute = URL.parse(entry.url, this.pageUrl.href)
    const mapped = absolute === null ? null : this.map(absolute)
    if (absolute === null || mapped === null) return
    const first = (holders: readonly string[]): string | null => {
      for (const h of holders) {
        const hex = sha256Hex(entry.digests.get(h))
        if (hex !== null) return hex
      }
      return null
    }
    const sha256 = first(FILE_DIGESTS) ?? sha256FromFragment(absolute.hash)
    const metadataSha256 = first(METADATA_DIGESTS)
    if (sha256 === null && metadataSha256 === null) return
    this.files.push({ path: mapped.path, sha256, size: entry.size ?? null, metadataSha256 })
  }


  private mapped (url: string): ReturnType<LinkMap> {
    const absolute = URL.parse(url, this.pageUrl.href)
    return absolute === null ? null : this.map(absolute)
  }
}

/** The page with its file links on the mirror; `learn` gets the files' published digests as they are read. */
export async function * rewriteJsonPage (source: AsyncIterable<Buffer>, pageUrl: URL, map: LinkMap,
  learn: (files: FileFacts[]) => Promise<void>): AsyncGenerator<Buffer> {
  const visitor = new PageVisitor(pageUrl, map)
  yield * learnAlong(scanJson(source, visitor), visitor.files, learn)
}
