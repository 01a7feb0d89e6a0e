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
