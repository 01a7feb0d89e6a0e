import { describe, expect, it } from 'vitest'
import { factHints, parseHint } from '../../../../node/handlers/pypi/file-facts.ts'
import type { FileFacts, LinkMap } from '../../../../node/handlers/pypi/file-facts.ts'
import { rewriteHtmlPage } from '../../../../node/handlers/pypi/html-page.ts'
import { rewriteJsonPage } from '../../../../node/handlers/pypi/json-page.ts'
import { chunksOf, collect, CUTS } from '../../../helpers/chunks.ts'

const A = 'a'.repeat(64)
const M = 'b'.repeat(64)

/** files.example → /packages (PyPI), torch.example → /pytorch (an extra index under a prefix). */
const map: LinkMap = (u) => {
  if (u.origin === 'https://files.example') return { href: u.pathname + u.search + u.hash, path: decodeURIComponent(u.pathname) }
  if (u.origin === 'https://torch.example') return { href: '/pytorch' + u.pathname + u.hash, path: decodeURIComponent('/pytorch' + u.pathname) }
  return null
}

interface Page { text: string, files: FileFacts[] }

/** The page rewritten whole and cut into chunks of every size in CUTS: all must agree. */
async function rewritten (kind: 'html' | 'json', page: string | Buffer, pageUrl: URL): Promise<Page> {
  const data = Buffer.isBuffer(page) ? page : Buffer.from(page, 'latin1')
  const runs: Page[] = []
  for (const size of CUTS) {
    const files: FileFacts[] = []
    const learn = async (batch: FileFacts[]): Promise<void> => { files.push(...batch) }
    const out = kind === 'html'
      ? rewriteHtmlPage(() => chunksOf(data, size), pageUrl, map, learn)
      : rewriteJsonPage(chunksOf(data, size), pageUrl, map, learn)
    runs.push({ text: (await collect(out)).toString('latin1'), files })
  }
  for (const run of runs.slice(1)) expect(run).toEqual(runs[0])
  return runs[0] as Page
}

const html = async (page: string | Buffer, pageUrl: URL): Promise<Page> => await rewritten('html', page, pageUrl)
const json = async (page: string, pageUrl: URL): Promise<Page> => await rewritten('json', Buffer.from(page, 'utf8'), pageUrl)

describe('HTML simple pages', () => {
  it('rewrites only hrefs, keeping attributes, fragments and other bytes', async () => {
    const doc = '<!DOCTYPE html>\n<html><body>\n' +
      `<a href="https://files.example/packages/x/a-1.0-py3-none-any.whl#sha256=${A}" data-requires-python="&gt;=3.8" data-core-metadata="sha256=${M}">a-1.0</a>\n` +
      '<a data-href="https://files.example/keep" href=\'https://elsewhere.example/b.whl\'>b</a> café\n</body></html>\n'
    const page = await html(Buffer.from(doc), new URL('https://pypi.example/simple/a/'))
    const out = Buffer.from(page.text, 'latin1').toString('utf8')
    expect(out).toBe(doc.replace('https://files.example/packages', '/packages'))
    expect(page.files).toEqual([{ path: '/packages/x/a-1.0-py3-none-any.whl', sha256: A, size: null, metadataSha256: M }])
  })

  it('keeps the attributes before an href once, whatever its quoting and case', async () => {
    const doc = '<a data-requires-python="&gt;=3" data-yanked="" href=https://files.example/packages/dd/a5.tar.gz>a5</a>' +
      '<A class=x HREF="https://files.example/packages/b.whl">b</A>' +
      '<base target="_self" href="https://files.example/packages/">'
    const page = await html(doc, new URL('https://pypi.example/simple/a5/'))
    expect(page.text).toBe(doc.replaceAll('https://files.example/packages', '/packages'))
  })

  it('gives root-relative links of an extra index their mount prefix and resolves against <base>', async () => {
    const doc = `<a href="/whl/cu121/torch-2.1.0%2Bcu121-cp311-cp311-linux_x86_64.whl#sha256=${A}">t</a>` +
      '<a href="rel/x-1.whl?a=1&amp;b=2">r</a>'
    const page = await html(doc, new URL('https://torch.example/whl/cu121/torch/'))
    expect(page.text).toContain(`href="/pytorch/whl/cu121/torch-2.1.0%2Bcu121-cp311-cp311-linux_x86_64.whl#sha256=${A}"`)
    expect(page.text).toContain('href="/pytorch/whl/cu121/torch/rel/x-1.whl"')
    expect(page.files[0]?.path).toBe('/pytorch/whl/cu121/torch-2.1.0+cu121-cp311-cp311-linux_x86_64.whl')
    const based = await html('<base href="https://files.example/packages/"><a href="y-1.whl">y</a>', new URL('https://pypi.example/simple/y/'))
    expect(based.text).toBe('<base href="/packages/"><a href="/packages/y-1.whl">y</a>')
  })
})

describe('PEP 691 JSON pages and the JSON API', () => {
  it('rewrites file urls only, keeping hashes, unknown keys and formatting', async () => {
    const doc = `{"meta": {"api-version": "1.1"}, "name": "a", "files": [{"filename": "a-1.0.whl", "url": "https:\\/\\/files.example\\/packages\\/a-1.0.whl", "hashes": {"sha256": "${A}"}, "core-metadata": {"sha256": "${M}"}, "size": 1000, "x-unknown": "https://files.example/keep"}]}`
    const page = await json(doc, new URL('https://pypi.example/simple/a/'))
    expect(page.text).toBe(doc.replace('"https:\\/\\/files.example\\/packages\\/a-1.0.whl"', '"/packages/a-1.0.whl"'))
    expect(page.files).toEqual([{ path: '/packages/a-1.0.whl', sha256: A, size: 1000, metadataSha256: M }])
    expect(factHints(page.files)).toEqual([['pypi:/packages/a-1.0.whl', `${A}:1000`], ['pypi:/packages/a-1.0.whl.metadata', M]])
    expect(parseHint(`${A}:1000`)).toEqual({ sha256: A, size: 1000 })
    expect(parseHint(M)).toEqual({ sha256: M, size: null })
    expect(parseHint('nope')).toBeNull()
  })

  it('reads digests of the legacy JSON API and leaves invalid JSON alone', async () => {
    const api = JSON.stringify({ info: { name: 'a' }, urls: [{ url: 'https://files.example/packages/a.whl', digests: { sha256: A }, size: 5 }], releases: { '1.0': [{ url: 'https://files.example/packages/b.whl', digests: { md5: 'x' } }] } })
    const page = await json(api, new URL('https://pypi.example/pypi/a/json'))
    expect(page.text).toContain('"url":"/packages/a.whl"')
    expect(page.text).toContain('"url":"/packages/b.whl"')
    expect(page.files).toEqual([{ path: '/packages/a.whl', sha256: A, size: 5, metadataSha256: null }])
    expect(await json('{nope', new URL('https://x.example/'))).toEqual({ text: '{nope', files: [] })
  })
})
