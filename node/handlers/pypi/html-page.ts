import { sha256FromAttr, sha256FromFragment } from './names.ts'
import type { FileFacts, LinkMap, RewrittenPage } from './file-facts.ts'

/**
 * PEP 503 HTML pages: only the `href` of `<a>` and `<base>` tags changes; every other byte, `data-*`
 * attributes included (HTML-escaped `data-requires-python="&gt;=3.8"` stays escaped), is kept. The text is
 * handled as latin1 so bytes map 1:1; an href's bytes are read as UTF-8 for URL parsing.
 */

const TAG = /<(a|base)\b([^>]*)>/gi
const HREF = /(\shref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i
const ATTR = /\b(data-core-metadata|data-dist-info-metadata)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/gi

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

export function rewriteHtmlPage (text: string, pageUrl: URL, map: LinkMap): RewrittenPage {
  const files: FileFacts[] = []
  // A <base href> changes what relative links resolve against (and is itself rewritten below).
  let base = pageUrl
  const baseTag = /<base\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i.exec(text)
  if (baseTag !== null) {
    try { base = new URL(utf8(unescapeHtml(baseTag[1] ?? baseTag[2] ?? baseTag[3] ?? '')), pageUrl) } catch { /* keep the page URL */ }
  }
  const out = text.replace(TAG, (whole, tag: string, attrs: string) => {
    const h = HREF.exec(attrs)
    if (h === null) return whole
    const raw = h[2] ?? h[3] ?? h[4] ?? ''
    const quote = h[2] !== undefined ? '"' : h[3] !== undefined ? "'" : ''
    let absolute: URL
    try { absolute = new URL(utf8(unescapeHtml(raw)), tag.toLowerCase() === 'base' ? pageUrl : base) } catch { return whole }
    const mapped = map(absolute)
    if (tag.toLowerCase() === 'a' && mapped !== null) {
      const core = attrValue(attrs, 'data-core-metadata') ?? attrValue(attrs, 'data-dist-info-metadata')
      files.push({
        path: mapped.path,
        sha256: sha256FromFragment(absolute.hash),
        size: null,
        metadataSha256: sha256FromAttr(core)
      })
    }
    if (mapped === null) return whole
    // Mapped hrefs are ASCII (URL serialisation percent-encodes the rest), so latin1 output is exact.
    const value = `${h[1] as string}${quote}${escapeAttr(mapped.href, quote)}${quote}`
    // `<` and the tag's name as written, then its attributes with only the href's value replaced.
    return whole.slice(0, 1 + tag.length) + attrs.slice(0, h.index) + value + attrs.slice(h.index + h[0].length) + '>'
  })
  return { text: out, files: files.filter(f => f.sha256 !== null || f.metadataSha256 !== null) }
}
