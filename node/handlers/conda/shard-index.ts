import { decode, encode } from '@msgpack/msgpack'
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib'

/**
 * Sharded repodata (CEP-16): `<subdir>/repodata_shards.msgpack.zst` is a zstd-compressed msgpack
 * document `{ info: { base_url, shards_base_url, subdir, ... }, shards: { name: sha256 } }`. Both base
 * URLs are resolved against the index's own URL; relative ones already lead through the mirror, absolute
 * ones on an upstream host are pointed at the mirror like repodata.json's `base_url`. The shards
 * themselves name packages by file name only and are content-addressed (their file name is their
 * sha256), so they pass through unmodified.
 *
 * Writers serialise `info` either as a map (rmp_serde `to_vec_named`, Python msgpack) or as an array
 * of its fields (rmp_serde `to_vec`); every absolute http(s) string in it is offered to `map`, so both
 * forms are handled without knowing field positions.
 */

const ABSOLUTE = /^https?:\/\//i

/** Whether decoded head bytes of an index may hold an absolute URL (cheap test before a full rewrite). */
export function mayHoldAbsoluteUrl (head: string): boolean {
  return /https?:\/\//i.test(head)
}

type MapUrl = (url: string) => string | null

function rewriteInfo (info: unknown, map: MapUrl): boolean {
  let changed = false
  const visit = (value: unknown, set: (v: string) => void): void => {
    if (typeof value !== 'string' || !ABSOLUTE.test(value)) return
    const mapped = map(value)
    if (mapped !== null && mapped !== value) { set(mapped); changed = true }
  }
  if (Array.isArray(info)) info.forEach((v, i) => visit(v, (m) => { info[i] = m }))
  else if (typeof info === 'object' && info !== null) {
    const o = info as Record<string, unknown>
    for (const [k, v] of Object.entries(o)) visit(v, (m) => { o[k] = m })
  }
  return changed
}

/**
 * `body` (the compressed index) with the absolute URLs of its `info` mapped; the same buffer when
 * nothing changed. Throws on a body that is not a zstd msgpack document.
 */
export function rewriteShardIndex (body: Buffer, map: MapUrl): Buffer {
  const doc: unknown = decode(zstdDecompressSync(body), { useBigInt64: true })
  let info: unknown
  if (Array.isArray(doc)) info = doc[0]
  else if (typeof doc === 'object' && doc !== null) info = (doc as Record<string, unknown>).info
  if (!rewriteInfo(info, map)) return body
  return zstdCompressSync(encode(doc, { useBigInt64: true, ignoreUndefined: false }))
}

/** Where a sharded index says packages and shards live, resolved against the index's URL (trailing slash). */
export interface ShardBases { readonly packages: URL, readonly shards: URL }

function resolveBase (value: unknown, indexUrl: URL): URL | null {
  if (typeof value !== 'string') return null
  try {
    const url = new URL(value === '' ? './' : value, indexUrl)
    if (!url.pathname.endsWith('/')) url.pathname += '/'
    return url
  } catch {
    return null
  }
}

/** The base URLs of a (compressed) sharded index; null when it cannot be read. */
export function shardIndexBases (body: Buffer, indexUrl: URL): ShardBases | null {
  let doc: unknown
  try { doc = decode(zstdDecompressSync(body), { useBigInt64: true }) } catch { return null }
  let base: unknown
  let shards: unknown
  if (Array.isArray(doc)) {
    // rmp_serde's array form keeps rattler's field order: subdir, base_url, shards_base_url, ...
    const info: unknown = doc[0]
    if (Array.isArray(info)) [, base, shards] = info as unknown[]
  } else if (typeof doc === 'object' && doc !== null) {
    const info = (doc as Record<string, unknown>).info
    if (typeof info === 'object' && info !== null) ({ base_url: base, shards_base_url: shards } = info as Record<string, unknown>)
  }
  const packages = resolveBase(base, indexUrl)
  const shardsUrl = resolveBase(shards, indexUrl)
  return packages === null || shardsUrl === null ? null : { packages, shards: shardsUrl }
}

function hexOf (v: unknown): string | null {
  if (v instanceof Uint8Array) return v.length === 32 ? Buffer.from(v).toString('hex') : null
  return typeof v === 'string' && /^[0-9a-fA-F]{64}$/.test(v) ? v.toLowerCase() : null
}

/** `package file → sha256 hex` of a (compressed) shard: `packages` and `packages.conda`, digests as bytes or hex. */
export function shardRecords (body: Buffer): Array<readonly [string, string]> {
  const doc = decode(zstdDecompressSync(body), { useBigInt64: true })
  const out: Array<readonly [string, string]> = []
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return out
  for (const group of ['packages', 'packages.conda']) {
    const records = (doc as Record<string, unknown>)[group]
    if (typeof records !== 'object' || records === null) continue
    for (const [file, record] of Object.entries(records as Record<string, unknown>)) {
      const sha = typeof record === 'object' && record !== null ? hexOf((record as Record<string, unknown>).sha256) : null
      if (sha !== null) out.push([file, sha])
    }
  }
  return out
}
