import { describe, expect, it } from 'vitest'
import { jsonString, scanJson } from '../../../node/metadata/json-scan.ts'
import type { JsonPath, JsonVisitor } from '../../../node/metadata/json-scan.ts'
import { chunksOf, collect, CUTS } from '../../helpers/chunks.ts'

type Seen = Array<[JsonPath, unknown]>

/** Every scalar of `doc` with its path, in document order, from JSON.parse. */
function scalarsOf (value: unknown, path: Array<string | number> = [], out: Seen = []): Seen {
  if (Array.isArray(value)) value.forEach((v, i) => scalarsOf(v, [...path, i], out))
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) scalarsOf(v, [...path, k], out)
  else out.push([path, value])
  return out
}

function containersOf (value: unknown, path: Array<string | number> = [], out: JsonPath[] = []): JsonPath[] {
  if (Array.isArray(value)) value.forEach((v, i) => containersOf(v, [...path, i], out))
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) containersOf(v, [...path, k], out)
  else return out
  out.push(path)
  return out
}

/** Runs `doc` cut into chunks of every size, with a visitor built per run; all runs must give the same bytes. */
async function scanned (doc: string, visitor: () => JsonVisitor, cuts: readonly number[] = CUTS): Promise<string> {
  const outs: string[] = []
  for (const size of cuts) outs.push((await collect(scanJson(chunksOf(Buffer.from(doc), size), visitor()))).toString())
  for (const out of outs) expect(out).toBe(outs[0])
  return outs[0] as string
}

const DOC = `{ "a": [1, -2.5e+3, true, null, {"b\\u0022": "x\\\\\\"}]{[,:"}],
  "\\u0075rl" : "https:\\/\\/h.example\\/p?q=\\u00e9",
  "nested": {"deep": [[], {}, [[{"n": 7}]]], "é": "ü"}, "last": false }`

describe('JSON scanner', () => {
  it('sees every scalar at its path and every container close, however the document is cut', async () => {
    const expectedScalars = scalarsOf(JSON.parse(DOC))
    const expectedCloses = containersOf(JSON.parse(DOC))
    for (const size of CUTS) {
      const seen: Seen = []
      const closed: JsonPath[] = []
      const visitor: JsonVisitor = {
        wants: () => true,
        value: (path, raw) => { seen.push([[...path], JSON.parse(raw)]); return undefined },
        close: (path) => { closed.push([...path]) }
      }
      const out = await collect(scanJson(chunksOf(Buffer.from(DOC), size), visitor))
      expect(out.toString()).toBe(DOC)
      expect(seen).toEqual(expectedScalars)
      expect(closed).toEqual(expectedCloses)
    }
  })

  it('replaces only the values it is given new text for', async () => {
    const out = await scanned(DOC, () => ({
      wants: (path) => path.at(-1) === 'url' || path.at(-1) === 'n',
      value: (path, raw) => path.at(-1) === 'n' ? String(Number(raw) * 2) : JSON.stringify(jsonString(raw)?.toUpperCase())
    }))
    expect(JSON.parse(out)).toEqual({ ...JSON.parse(DOC), url: 'HTTPS://H.EXAMPLE/P?Q=É', nested: { ...JSON.parse(DOC).nested, deep: [[], {}, [[{ n: 14 }]]] } })
    expect(out.replace('"HTTPS://H.EXAMPLE/P?Q=É"', '"https:\\/\\/h.example\\/p?q=\\u00e9"').replace('"n": 14', '"n": 7')).toBe(DOC)
  })

  it('passes a chosen value longer than 1 MiB on unread', async () => {
    const doc = `{"url": "${'x'.repeat((1 << 20) + 10)}", "url": "y"}`
    const seen: string[] = []
    const out = await scanned(doc, () => ({ wants: () => true, value: (_path, raw) => { seen.push(raw); return '"z"' } }), [64, 4096, 1 << 20])
    expect(out).toBe(`{"url": "${'x'.repeat((1 << 20) + 10)}", "url": "z"}`)
    expect(seen.every(raw => raw === '"y"')).toBe(true)
  })

  it('passes containers nested past 1000 levels through unread, and reads on after them', async () => {
    const deep = '['.repeat(5000) + '{"url": "in-deep"}' + ']'.repeat(5000)
    const doc = `{"a": ${deep}, "url": "top", "b": [{"url": "below"}]}`
    const seen: Array<[JsonPath, string]> = []
    const out = await scanned(doc, () => ({ wants: (path) => path.at(-1) === 'url', value: (path, raw) => { seen.push([[...path], raw]); return '"X"' } }), [7, 4096, 1 << 20])
    expect(out).toBe(doc.replace('"top"', '"X"').replace('"below"', '"X"'))
    expect(seen.slice(0, 2)).toEqual([[['url'], '"top"'], [['b', 0, 'url'], '"below"']])
  })

  it('passes malformed input through without throwing', async () => {
    for (const doc of ['{"a":[1,2,}', '"unterminated', '}}]]{"url"', '{"url":"x', '{"k\\', 'nul', '']) {
      expect(await scanned(doc, () => ({ wants: () => true, value: () => undefined }))).toBe(doc)
    }
    expect(await scanned('{"url":"x', () => ({ wants: () => true, value: () => '"y"' }))).toBe('{"url":"x')
  })
})
