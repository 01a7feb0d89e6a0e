import { describe, expect, it } from 'vitest'
import { cleanApiJson, isJsonType } from '../../../../node/handlers/hf/api-json.ts'
import { splitLinkHeader, stripXetHeaders, stripXetJson, stripXetLinks, withoutXetAccept } from '../../../../node/handlers/hf/xet.ts'

const XET_LINK = '<https://huggingface.co/api/models/a/b/xet-read-token/c>; rel="xet-auth", <https://cas-server.xethub.hf.co/v1/reconstructions/h>; rel="xet-reconstruction-info"'

describe('xet stripping', () => {
  it('splits Link members, keeping commas inside URLs', () => {
    expect(splitLinkHeader('<https://h/x?a=1,2>; rel="next", <https://h/y>; rel="prev"')).toEqual(['<https://h/x?a=1,2>; rel="next"', '<https://h/y>; rel="prev"'])
  })

  it('drops xet relations and keeps the rest', () => {
    expect(stripXetLinks(XET_LINK)).toBeNull()
    expect(stripXetLinks(`<https://h/tree?cursor=x>; rel="next", ${XET_LINK}`)).toBe('<https://h/tree?cursor=x>; rel="next"')
    expect(stripXetLinks('<https://h/a>; rel=xet-auth')).toBeNull()
  })

  it('drops X-Xet-* headers and xet Link relations', () => {
    const out = stripXetHeaders({ 'x-xet-hash': 'h', 'x-xet-refresh-route': '/r', 'X-Xet-Cas-Url': 'u', link: XET_LINK, 'x-repo-commit': 'c', etag: '"e"' })
    expect(out).toEqual({ 'x-repo-commit': 'c', etag: '"e"' })
  })

  it('removes xetHash at every depth of API JSON', () => {
    const doc = [{ path: 'a', xetHash: 'x', lfs: { oid: 'o' } }, { path: 'b', nested: { xetHash: 'y', keep: 1 } }]
    expect(stripXetJson(doc)).toBe(2)
    expect(doc).toEqual([{ path: 'a', lfs: { oid: 'o' } }, { path: 'b', nested: { keep: 1 } }])
  })

  it('keeps bodies without Xet byte for byte, rewrites the others', () => {
    const plain = Buffer.from('{ "a" : 1 }')
    expect(cleanApiJson(plain)).toBe(plain)
    const notJson = Buffer.from('xetHash but not json')
    expect(cleanApiJson(notJson)).toBe(notJson)
    expect(JSON.parse(cleanApiJson(Buffer.from('[{"path":"w","xetHash":"h","size":3}]')).toString())).toEqual([{ path: 'w', size: 3 }])
  })

  it('tells JSON content types', () => {
    expect(isJsonType('application/json; charset=utf-8')).toBe(true)
    expect(isJsonType('application/vnd.xet-fileinfo+json')).toBe(true)
    expect(isJsonType('text/plain')).toBe(false)
    expect(isJsonType(undefined)).toBe(false)
  })

  it('drops the Xet file-info Accept type', () => {
    expect(withoutXetAccept('application/vnd.xet-fileinfo+json, */*')).toBe('*/*')
    expect(withoutXetAccept('application/vnd.xet-fileinfo+json')).toBe('*/*')
    expect(withoutXetAccept('application/json')).toBe('application/json')
    expect(withoutXetAccept(undefined)).toBeUndefined()
  })
})
