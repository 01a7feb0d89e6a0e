import { decode, encode } from '@msgpack/msgpack'
import { Readable } from 'node:stream'
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { findAbsoluteBaseUrl } from '../../../../node/handlers/conda/base-url.ts'
import { decodedHead } from '../../../../node/handlers/conda/decoded-head.ts'
import { mayHoldAbsoluteUrl, rewriteShardIndex, shardIndexBases, shardRecords } from '../../../../node/handlers/conda/shard-index.ts'
import type { MetadataResult } from '../../../../node/metadata/types.ts'

/** `bzip2 -9` of a v2 repodata with an absolute base_url, and of a v1 repodata without one. */
const BZ2_ABSOLUTE = 'QlpoOTFBWSZTWW+YA20AAEAbgBAHkBAAAL/v30ogAHIiQeU9RiaA2gNBKpinhpMRPUzQnqeU2r1zbukJ4UvRc9c6OekkfwLgOUDH8F7n0zudOTE/hqWZ7ETy16xywinjZCFBNmDauo1RiG+JEGxPRAqITgFv5M4Hkszn0oHWrDsC4F3JFOFCQb5gDbQ='
const BZ2_PLAIN = 'QlpoOTFBWSZTWZjqHO8AACWbgBAFIBAAAL/p3wogAFCgAADJkDSm00J6mh6mTTNS/lvV0tChZykikJtnIyKx13MM0ro+gkx901TCh0ejRkgc1My5gfD4wSZD/i7kinChITHUOd4='

function result (body: Buffer): MetadataResult {
  return { body: { size: body.length, open: () => Readable.from([body]), read: async () => body } } as unknown as MetadataResult
}

const hash = (n: number): Uint8Array => new Uint8Array(32).fill(n)
const map = (url: string): string | null => url.startsWith('https://cdn.example/') ? 'http://mirror:1/pkgs/' + url.slice(20) : null

describe('sharded repodata index', () => {
  it('points absolute base URLs at the mirror and keeps everything else', () => {
    const doc = { info: { subdir: 'noarch', base_url: 'https://cdn.example/conda-forge/noarch/', shards_base_url: 'https://cdn.example/conda-forge/noarch/shards/', created_at: '2025-01-01T00:00:00Z' }, shards: { numpy: hash(1), six: hash(2) }, version: 1 }
    const out = rewriteShardIndex(zstdCompressSync(encode(doc)), map)
    const back = decode(zstdDecompressSync(out)) as typeof doc
    expect(back.info).toEqual({ ...doc.info, base_url: 'http://mirror:1/pkgs/conda-forge/noarch/', shards_base_url: 'http://mirror:1/pkgs/conda-forge/noarch/shards/' })
    const hex = (o: Record<string, Uint8Array>): Record<string, string> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Buffer.from(v).toString('hex')]))
    expect(hex(back.shards)).toEqual(hex(doc.shards))
    expect(back.version).toBe(1)
  })

  it('handles the array form (rmp_serde to_vec) and leaves relative or unmapped URLs alone', () => {
    const arr = [['linux-64', 'https://cdn.example/c/linux-64/', './shards/'], { a: hash(3) }]
    const back = decode(zstdDecompressSync(rewriteShardIndex(zstdCompressSync(encode(arr)), map))) as unknown[]
    expect(back[0]).toEqual(['linux-64', 'http://mirror:1/pkgs/c/linux-64/', './shards/'])
    const relative = zstdCompressSync(encode({ info: { base_url: '', shards_base_url: './shards/' }, shards: {} }))
    expect(rewriteShardIndex(relative, map)).toBe(relative)
    const elsewhere = zstdCompressSync(encode({ info: { base_url: 'https://other.example/x/' }, shards: {} }))
    expect(rewriteShardIndex(elsewhere, map)).toBe(elsewhere)
    expect(() => rewriteShardIndex(Buffer.from('not zstd'), map)).toThrow()
  })

  it('tells from the decoded head whether a rewrite may be needed', async () => {
    const abs = zstdCompressSync(encode({ info: { base_url: 'https://cdn.example/c/' }, shards: {} }))
    const rel = zstdCompressSync(encode({ info: { base_url: './' }, shards: {} }))
    expect(mayHoldAbsoluteUrl(await decodedHead(result(abs), 'zst', 1024))).toBe(true)
    expect(mayHoldAbsoluteUrl(await decodedHead(result(rel), 'zst', 1024))).toBe(false)
  })
})

describe('sharded repodata digests', () => {
  const indexUrl = new URL('https://chan.example/c/noarch/repodata_shards.msgpack.zst')
  const z = (doc: unknown): Buffer => zstdCompressSync(encode(doc))

  it('resolves the base URLs of an index against its URL', () => {
    const bases = (info: unknown): [string, string] | null => {
      const b = shardIndexBases(z({ info, shards: {} }), indexUrl)
      return b === null ? null : [b.packages.href, b.shards.href]
    }
    expect(bases({ base_url: '', shards_base_url: './shards' })).toEqual(['https://chan.example/c/noarch/', 'https://chan.example/c/noarch/shards/'])
    expect(bases({ base_url: 'https://cdn.example/c/noarch/', shards_base_url: 'https://fast.example/s/' })).toEqual(['https://cdn.example/c/noarch/', 'https://fast.example/s/'])
    expect(shardIndexBases(z([['noarch', '../x/', 'shards/'], {}]), indexUrl)?.packages.href).toBe('https://chan.example/c/x/')
    expect(bases({ subdir: 'noarch' })).toBeNull()
    expect(shardIndexBases(Buffer.from('junk'), indexUrl)).toBeNull()
  })

  it('reads the records of a shard, digests as bytes or hex', () => {
    const a = new Uint8Array(32).fill(0xab)
    const shard = z({ packages: { 'x-1-0.tar.bz2': { sha256: 'CD'.repeat(32) } }, 'packages.conda': { 'x-1-0.conda': { sha256: a }, 'y-1-0.conda': { md5: 'm' } }, removed: [] })
    expect(shardRecords(shard)).toEqual([['x-1-0.tar.bz2', 'cd'.repeat(32)], ['x-1-0.conda', 'ab'.repeat(32)]])
  })
})

describe('bzip2 repodata head', () => {
  it('decodes the head of a bzip2 document to find an absolute base_url', async () => {
    expect(findAbsoluteBaseUrl(await decodedHead(result(Buffer.from(BZ2_ABSOLUTE, 'base64')), 'bz2', 65536))).toBe('https://cdn.example/conda-forge/noarch/')
    const plain = await decodedHead(result(Buffer.from(BZ2_PLAIN, 'base64')), 'bz2', 65536)
    expect(plain.startsWith('{"info":{"subdir":"noarch"}')).toBe(true)
    expect(findAbsoluteBaseUrl(plain)).toBeNull()
    expect((await decodedHead(result(Buffer.from(BZ2_PLAIN, 'base64')), 'bz2', 10)).length).toBe(10)
    await expect(decodedHead(result(Buffer.from('not bzip2 at all')), 'bz2', 100)).rejects.toThrow()
  })
})
