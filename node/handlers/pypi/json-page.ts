import type { FileFacts, LinkMap, RewrittenPage } from './file-facts.ts'
import { sha256FromFragment } from './names.ts'

/**
 * PEP 691 JSON pages (`files[].url`) and the legacy JSON API (`urls[].url`, `releases.*[].url`): only the
 * `"url"` string values change; hashes, unknown keys, key order and formatting stay as upstream wrote them.
 */

const URL_VALUE = /("url"\s*:\s*)"((?:[^"\\]|\\.)*)"/g

type Json = Record<string, unknown>

function isObject (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function sha256Of (v: unknown): string | null {
  if (!isObject(v)) return null
  const s = v.sha256
  return typeof s === 'string' && /^[0-9a-fA-F]{64}$/.test(s) ? s.toLowerCase() : null
}

/** The file entries of either document shape. */
function fileEntries (doc: Json): Json[] {
  const out: Json[] = []
  const add = (list: unknown): void => { if (Array.isArray(list)) for (const f of list) if (isObject(f)) out.push(f) }
  add(doc.files)
  add(doc.urls)
  if (isObject(doc.releases)) for (const list of Object.values(doc.releases)) add(list)
  return out
}

export function rewriteJsonPage (text: string, pageUrl: URL, map: LinkMap): RewrittenPage {
  let doc: unknown
  try { doc = JSON.parse(text) } catch { return { text, files: [] } }
  if (!isObject(doc)) return { text, files: [] }
  const files: FileFacts[] = []
  for (const f of fileEntries(doc)) {
    if (typeof f.url !== 'string') continue
    let absolute: URL
    try { absolute = new URL(f.url, pageUrl) } catch { continue }
    const mapped = map(absolute)
    if (mapped === null) continue
    const sha256 = sha256Of(f.hashes) ?? sha256Of(f.digests) ?? sha256FromFragment(absolute.hash)
    const metadataSha256 = sha256Of(f['core-metadata']) ?? sha256Of(f['dist-info-metadata'])
    if (sha256 === null && metadataSha256 === null) continue
    files.push({ path: mapped.path, sha256, size: typeof f.size === 'number' ? f.size : null, metadataSha256 })
  }
  const out = text.replace(URL_VALUE, (whole, key: string, raw: string) => {
    let value: unknown
    try { value = JSON.parse(`"${raw}"`) } catch { return whole }
    if (typeof value !== 'string') return whole
    let absolute: URL
    try { absolute = new URL(value, pageUrl) } catch { return whole }
    const mapped = map(absolute)
    return mapped === null ? whole : `${key}${JSON.stringify(mapped.href)}`
  })
  return { text: out, files }
}
