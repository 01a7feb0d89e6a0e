import { describe, expect, it } from 'vitest'
import { factHints, parseHint } from '../../../../node/handlers/pypi/file-facts.ts'
import type { LinkMap } from '../../../../node/handlers/pypi/file-facts.ts'
import { rewriteHtmlPage } from '../../../../node/handlers/pypi/html-page.ts'
import { rewriteJsonPage } from '../../../../node/handlers/pypi/json-page.ts'

const A = 'a'.repeat(64)
const M = 'b'.repeat(64)

/** files.example → /packages (PyPI), torch.example → /pytorch (an extra index under a prefix). */
const map: LinkMap = (u) => {
  if (u.origin === 'https://files.example') return { href: u.pathname + u.search + u.hash, path: decodeURIComponent(u.pathname) }
  if (u.origin === 'https://torch.example') return { href: '/pytorch' + u.pathname + u.hash, path: decodeURIComponent('/pytorch' + u.pathname) }
  return null
}

describe('HTML simple pages', () => {
  it('rewrites only hrefs, keeping attributes, fragments and other bytes', () => {
    const html = '<!DOCTYPE html>\n<html><body>\n' +
      `<a href="https://files.example/packages/x/a-1.0-py3-none-any.whl#sha256=${A}" data-requires-python="&gt;=3.8" data-core-metadata="sha256=${M}">a-1.0</a>\n` +
      '<a data-href="https://files.example/keep" href=\'https://elsewhere.example/b.whl\'>b</a> café\n</body></html>\n'
    const page = rewriteHtmlPage(Buffer.from(html).toString('latin1'), new URL('https://pypi.example/simple/a/'), map)
    const out = Buffer.from(page.text, 'latin1').toString('utf8')
    expect(out).toBe(html.replace('https://files.example/packages', '/packages'))
    expect(page.files).toEqual([{ path: '/packages/x/a-1.0-py3-none-any.whl', sha256: A, size: null, metadataSha256: M }])
  })

  it('keeps the attributes before an href once, whatever its quoting and case', () => {
    const html = '<a data-requires-python="&gt;=3" data-yanked="" href=https://files.example/packages/dd/a5.tar.gz>a5</a>' +
      '<A class=x HREF="https://files.example/packages/b.whl">b</A>' +
      '<base target="_self" href="https://files.example/packages/">'
    const page = rewriteHtmlPage(html, new URL('https://pypi.example/simple/a5/'), map)
    expect(page.text).toBe(html.replaceAll('https://files.example/packages', '/packages'))
  })

  it('gives root-relative links of an extra index their mount prefix and resolves against <base>', () => {
    const html = `<a href="/whl/cu121/torch-2.1.0%2Bcu121-cp311-cp311-linux_x86_64.whl#sha256=${A}">t</a>` +
      '<a href="rel/x-1.whl?a=1&amp;b=2">r</a>'
    const page = rewriteHtmlPage(html, new URL('https://torch.example/whl/cu121/torch/'), map)
    expect(page.text).toContain(`href="/pytorch/whl/cu121/torch-2.1.0%2Bcu121-cp311-cp311-linux_x86_64.whl#sha256=${A}"`)
    expect(page.text).toContain('href="/pytorch/whl/cu121/torch/rel/x-1.whl"')
    expect(page.files[0]?.path).toBe('/pytorch/whl/cu121/torch-2.1.0+cu121-cp311-cp311-linux_x86_64.whl')
    const based = rewriteHtmlPage('<base href="https://files.example/packages/"><a href="y-1.whl">y</a>', new URL('https://pypi.example/simple/y/'), map)
    expect(based.text).toBe('<base href="/packages/"><a href="/packages/y-1.whl">y</a>')
  })
})

describe('PEP 691 JSON pages and the JSON API', () => {
  it('rewrites file urls only, keeping hashes, unknown keys and formatting', () => {
    const doc = `{"meta": {"api-version": "1.1"}, "name": "a", "files": [{"filename": "a-1.0.whl", "url": "https:\\/\\/files.example\\/packages\\/a-1.0.whl", "hashes": {"sha256": "${A}"}, "core-metadata": {"sha256": "${M}"}, "size": 1000, "x-unknown": "https://files.example/keep"}]}`
    const page = rewriteJsonPage(doc, new URL('https://pypi.example/simple/a/'), map)
    expect(page.text).toBe(doc.replace('"https:\\/\\/files.example\\/packages\\/a-1.0.whl"', '"/packages/a-1.0.whl"'))
    expect(page.files).toEqual([{ path: '/packages/a-1.0.whl', sha256: A, size: 1000, metadataSha256: M }])
    expect(factHints(page.files)).toEqual([['pypi:/packages/a-1.0.whl', `${A}:1000`], ['pypi:/packages/a-1.0.whl.metadata', M]])
    expect(parseHint(`${A}:1000`)).toEqual({ sha256: A, size: 1000 })
    expect(parseHint(M)).toEqual({ sha256: M, size: null })
    expect(parseHint('nope')).toBeNull()
  })

  it('reads digests of the legacy JSON API and leaves invalid JSON alone', () => {
    const api = JSON.stringify({ info: { name: 'a' }, urls: [{ url: 'https://files.example/packages/a.whl', digests: { sha256: A }, size: 5 }], releases: { '1.0': [{ url: 'https://files.example/packages/b.whl', digests: { md5: 'x' } }] } })
    const page = rewriteJsonPage(api, new URL('https://pypi.example/pypi/a/json'), map)
    expect(page.text).toContain('"url":"/packages/a.whl"')
    expect(page.text).toContain('"url":"/packages/b.whl"')
    expect(page.files).toEqual([{ path: '/packages/a.whl', sha256: A, size: 5, metadataSha256: null }])
    expect(rewriteJsonPage('{nope', new URL('https://x.example/'), map)).toEqual({ text: '{nope', files: [] })
  })
})
