/** Shapes of conda channel paths (pure). */

export type CondaPath =
  /** A package archive, named in repodata. */
  | { kind: 'package', file: string }
  /** repodata (`.json`, `.json.zst`, `.json.bz2`), `.jlap`, shards, channeldata and other JSON. */
  | { kind: 'metadata', repodata: RepodataCoding | null }
  /** The sharded repodata index (CEP-16), `repodata_shards.msgpack.zst`, whose base URLs may be absolute. */
  | { kind: 'shard-index' }

/** How a repodata document is stored on the wire: plain JSON, zstd or bzip2 (whose head only is read here). */
export type RepodataCoding = 'json' | 'zst' | 'bz2'

const REPODATA = /(?:^|\/)(?:current_)?repodata(?:_from_packages)?\.json(?:\.(zst|bz2))?$/

export function classifyCondaPath (pathname: string): CondaPath | null {
  const file = pathname.slice(pathname.lastIndexOf('/') + 1)
  if (/\.(?:conda|tar\.bz2)$/.test(file)) return { kind: 'package', file: decodeSafe(file) }
  const m = REPODATA.exec(pathname)
  if (m !== null) return { kind: 'metadata', repodata: (m[1] ?? 'json') as RepodataCoding }
  if (file === 'repodata_shards.msgpack.zst') return { kind: 'shard-index' }
  if (/\.(?:jlap|msgpack\.zst|json)$/.test(file)) return { kind: 'metadata', repodata: null }
  return null
}

function decodeSafe (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}
