import { sha256FromAttr, sha256FromFragment } from './names.ts'
import type { FileFacts, LinkMap } from './file-facts.ts'
import { learnAlong } from '../../metadata/learn-along.ts'

/**
 * PEP 503 HTML pages: only the `href` of `<a>` and `<base>` tags changes; every other byte, `data-*`
 * attributes included (HTML-escaped `data-requires-python="&gt;=3.8"` stays escaped), is kept. The text is
 * handled as latin1 so bytes map 1:1; an href's bytes are read as UTF-8 for URL parsing. Streamed: a page of
 * any size is rewritten in the memory of one chunk.
 */

const TAG = /<(a|base)\b([^>]*)>/gi
const HREF = /(\shref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i
const ATTR = /\b(data-core-metadata|data-dist-info-metadata)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/gi

/** Text held while waiting for a `>`; past this, passed on as it is. */
const MAX_CARRY = 1 << 20

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function unescapeHtml (s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ent: string) => {
    if (ent[0] === '#') {
      const code = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10)
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole
    }
    return ENTITIES[ent.toLowerCase()] ?? whole
  })
}

function escapeAttr (s: string, quote: string): string {
  const out = s.replace(/&/g, '&amp;')
  return quote === '"' ? out.replace(/"/g, '&quot;') : quote === "'" ? out.replace(/'/g, '&#39;') : out
}

/** latin1 code units of an attribute value, read as the UTF-8 they are. */
function utf8 (latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8')
}

function attrValue (attrs: string, name: string): string | undefined {
  ATTR.lastIndex = 0
  for (let m = ATTR.exec(attrs); m !== null; m = ATTR.exec(attrs)) {
    if ((m[1] as string).toLowerCase() === name) return unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return undefined
}

/** Runs of the page's text (latin1, byte for byte) that each end after a `>`, so no tag is cut. */
async function * tagRuns (source: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let carry = ''
  for await (const chunk of source) {
    const text = carry + chunk.toString('latin1')
    const end = text.lastIndexOf('>') + 1
    if (end === 0 && text.length <= MAX_CARRY) {
      carry = text
      continue
    }
    // No `>` for that long: no tag to rewrite in it.
    const cut = end === 0 ? text.length : end
    carry = text.slice(cut)
    yield text.slice(0, cut)
  }
  if (carry !== '') yield carry
}

/** The page's first `<base href>` resolved, else the page's own URL. */
async function baseOf (source: AsyncIterable<Buffer>, pageUrl: URL): Promise<URL> {
  for await (const run of tagRuns(source)) {
    TAG.lastIndex = 0
    for (let m = TAG.exec(run); m !== null; m = TAG.exec(run)) {
      if ((m[1] as string).toLowerCase() !== 'base') continue
      const h = HREF.exec(m[2] as string)
      if (h === null) continue
      try { return new URL(utf8(unescapeHtml(h[2] ?? h[3] ?? h[4] ?? '')), pageUrl) } catch { return pageUrl }
    }
  }
  return pageUrl
}

/**
 * The page with its file links on the mirror; `learn` gets the files' published digests as they are read.
 * `open` is called twice: once to find a `<base href>` (it applies to links before it too), once to rewrite.
 */
export async function * rewriteHtmlPage (open: () => AsyncIterable<Buffer>, pageUrl: URL, map: LinkMap,
  learn: (files: FileFacts[]) => Promise<void>): AsyncGenerator<Buffer> {
  const base = await baseOf(open(), pageUrl)
  const files: FileFacts[] = []
  const rewriteTag = (whole: string, tag: string, attrs: string): string => {
    const h = HREF.exec(attrs)
    if (h === null) return whole
    const raw = h[2] ?? h[3] ?? h[4] ?? ''
    const quote = h[2] !== undefined ? '"' : h[3] !== undefined ? "'" : ''
    let absolute: URL
    try { absolute = new URL(utf8(unescapeHtml(raw)), tag.toLowerCase() === 'base' ? pageUrl : base) } catch { return whole }
    const mapped = map(absolute)
    if (mapped === null) return whole
    if (tag.toLowerCase() === 'a') {
      const core = attrValue(attrs, 'data-core-metadata') ?? attrValue(attrs, 'data-dist-info-metadata')
      const sha256 = sha256FromFragment(absolute.hash)
      const metadataSha256 = sha256FromAttr(core)
      if (sha256 !== null || metadataSha256 !== null) files.push({ path: mapped.path, sha256, size: null, metadataSha256 })
    }
    // Mapped hrefs are ASCII (URL serialisation percent-encodes the rest), so latin1 output is exact.
    const value = `${h[1] as string}${quote}${escapeAttr(mapped.href, quote)}${quote}`
    // `<` and the tag's name as written, then its attributes with only the href's value replaced.
    return whole.slice(0, 1 + tag.length) + attrs.slice(0, h.index) + value + attrs.slice(h.index + h[0].length) + '>'
  }
  async function * rewritten (): AsyncGenerator<Buffer> {
    for await (const run of tagRuns(open())) yield Buffer.from(run.replace(TAG, rewriteTag), 'latin1')
  }
  yield * learnAlong(rewritten(), files, learn)
}
