import { Readable } from 'node:stream'
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { findAbsoluteBaseUrl, rewriteBaseUrl, rewriteRepodataBaseUrl } from '../../../../node/handlers/conda/base-url.ts'
import { chunksOf, collect } from '../../../helpers/chunks.ts'
import { classifyCondaPath } from '../../../../node/handlers/conda/paths.ts'
import { scanRecords } from '../../../../node/handlers/conda/repodata-index.ts'
import { packagesDir } from '../../../../node/handlers/conda/indexer.ts'
import type { RecordBatch } from '../../../../node/handlers/conda/repodata-index.ts'

const A = 'a'.repeat(64)
const B = 'B'.repeat(64)

describe('conda paths', () => {
  it.each([
    ['/linux-64/repodata.json', { kind: 'metadata', repodata: 'json' }],
    ['/linux-64/repodata.json.zst', { kind: 'metadata', repodata: 'zst' }],
    ['/noarch/repodata.json.bz2', { kind: 'metadata', repodata: 'bz2' }],
    ['/noarch/current_repodata.json', { kind: 'metadata', repodata: 'json' }],
    ['/t/tok-123/chan/noarch/repodata.json', { kind: 'metadata', repodata: 'json' }],
    ['/noarch/repodata.jlap', { kind: 'metadata', repodata: null }],
    ['/noarch/repodata_shards.msgpack.zst', { kind: 'shard-index' }],
    ['/noarch/shards/abcd.msgpack.zst', { kind: 'metadata', repodata: null }],
    ['/channeldata.json', { kind: 'metadata', repodata: null }],
    ['/linux-64/numpy-2.0.0-py311h1234_0.conda', { kind: 'package', file: 'numpy-2.0.0-py311h1234_0.conda' }],
    ['/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2', { kind: 'package', file: 'six-1.16.0-pyh6c4a22f_0.tar.bz2' }],
    ['/noarch/index.html', null]
  ])('%s', (path, expected) => {
    expect(classifyCondaPath(path)).toEqual(expected)
  })
})

describe('repodata records', () => {
  it('finds every record across arbitrary chunk boundaries and ignores records without sha256', async () => {
    const doc = JSON.stringify({
      info: { subdir: 'noarch' },
      packages: { 'a-1.0-0.tar.bz2': { name: 'a', depends: ['b >=1'], sha256: A, size: 10 } },
      'packages.conda': { 'b-1.0-0.conda': { name: 'b', sha256: B, md5: 'x' }, 'c-1.0-0.conda': { name: 'c', md5: 'y' } }
    }, null, 1)
    for (const size of [1, 7, 64, doc.length]) {
      const chunks: Buffer[] = []
      for (let i = 0; i < doc.length; i += size) chunks.push(Buffer.from(doc.slice(i, i + size)))
      const found: RecordBatch = []
      const total = await scanRecords(Readable.from(chunks), async (batch) => { found.push(...batch) }, { batchSize: 1 })
      expect(total).toBe(2)
      expect(found).toEqual([['a-1.0-0.tar.bz2', A], ['b-1.0-0.conda', B.toLowerCase()]])
    }
  })
})

describe('base_url', () => {
  it('finds and rewrites only an absolute base_url', () => {
    const text = '{"info": {"subdir": "noarch", "base_url": "https://cdn.example/chan/noarch/"}, "packages": {}}'
    expect(findAbsoluteBaseUrl(text)).toBe('https://cdn.example/chan/noarch/')
    expect(findAbsoluteBaseUrl('{"info": {"base_url": "./"}}')).toBeNull()
    expect(rewriteBaseUrl(text, () => 'http://mirror/chan/noarch/')).toBe(text.replace('https://cdn.example/chan/noarch/', 'http://mirror/chan/noarch/'))
    expect(rewriteBaseUrl(text, () => null)).toBe(text)
  })

  it('streams a repodata of any size, plain or zstd, changing only the base_url in its head', async () => {
    const packages = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`p${i}-1.0-0.conda`, { sha256: A, base_url: 'https://cdn.example/not-this/' }]))
    const text = JSON.stringify({ info: { subdir: 'noarch', base_url: 'https://cdn.example/chan/noarch/' }, packages })
    const expected = text.replace('https://cdn.example/chan/noarch/', 'http://mirror/chan/noarch/')
    const map = (url: string): string | null => url.startsWith('https://cdn.example/chan/') ? 'http://mirror/chan/noarch/' : null
    for (const size of [1, 7, 4096]) {
      const plain = Readable.from(chunksOf(Buffer.from(text), size))
      expect((await collect(rewriteRepodataBaseUrl(plain, 'json', map, 64 * 1024))).toString()).toBe(expected)
    }
    const zst = Readable.from(chunksOf(zstdCompressSync(Buffer.from(text)), 999))
    expect(zstdDecompressSync(await collect(rewriteRepodataBaseUrl(zst, 'zst', map, 64 * 1024))).toString()).toBe(expected)
    const unmapped = await collect(rewriteRepodataBaseUrl(Readable.from([Buffer.from(text)]), 'json', () => null, 64 * 1024))
    expect(unmapped.toString()).toBe(text)
    const broken = rewriteRepodataBaseUrl(Readable.from([Buffer.from('not zstd')]), 'zst', map, 64 * 1024)
    await expect(collect(broken)).rejects.toThrow()
  })
})

describe('repodata v2 base_url', () => {
  const repodata = new URL('https://conda.example/conda-forge/noarch/repodata.json')
  it('names the directory package digests are kept under: absolute, relative, with or without a final slash', () => {
    expect(packagesDir('{"info": {"base_url": "https://cdn.example/pkgs/cf/noarch/"}}', repodata)).toBe('https://cdn.example/pkgs/cf/noarch/')
    expect(packagesDir('{"info":{"base_url":"https://cdn.example/pkgs/cf/noarch"}}', repodata)).toBe('https://cdn.example/pkgs/cf/noarch/')
    expect(packagesDir('{"info": {"base_url": "../../mirror/noarch/"}}', repodata)).toBe('https://conda.example/mirror/noarch/')
    expect(packagesDir('{"info": {"subdir": "noarch"}}', repodata)).toBeNull()
  })
})
