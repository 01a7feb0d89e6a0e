import { createHash } from 'node:crypto'
import type { KeyEntry, Validator } from '../store/index-db.ts'
import type { BlobIdentity } from './identity.ts'
import type { SourceResponse } from './upstream-source.ts'

/** What clients are told about a blob: the same whether it is served from cache or while downloading. */
export interface BlobMeta {
  /** Null only while a download without Content-Length and without Range support is running. */
  size: number | null
  etag: string
  lastModified: string | null
  contentType: string | null
  /** Upstream headers replayed to clients (lower-case names). */
  headers: Record<string, string>
  validator: Validator
}

/** Length of the first request: one piece, or 4 MiB when the piece size depends on the unknown size. */
export const AUTO_FIRST_RANGE = 4 << 20

export function firstRange (chunkSize: number, resumePieceSize?: number): number {
  if (resumePieceSize !== undefined) return resumePieceSize
  return chunkSize > 0 ? chunkSize : AUTO_FIRST_RANGE
}

/** Always replayed when present; rule head_meta_headers add to these. */
const BASE_REPLAY = ['content-type', 'content-disposition', 'last-modified', 'content-encoding']

/** The whole file's size (a 206's or 416's Content-Range total, a 200's Content-Length) and its validator. */
export function fileOf (res: SourceResponse): { size: number | null, validator: Validator } {
  const h = res.headers
  let size: number | null = null
  if (res.status === 206 || res.status === 416) size = res.contentRange?.total ?? null
  else if (h['content-length'] !== undefined && /^\d+$/.test(h['content-length'])) size = Number(h['content-length'])
  return { size, validator: { etag: h.etag ?? null, lastModified: h['last-modified'] ?? null } }
}

export function metaFromResponse (res: SourceResponse, identity: BlobIdentity, replay: readonly string[]): BlobMeta {
  const h = res.headers
  const { size, validator } = fileOf(res)
  const headers: Record<string, string> = {}
  for (const name of [...BASE_REPLAY, ...replay]) {
    const v = h[name.toLowerCase()]
    if (v !== undefined && !(name === 'content-encoding' && v.toLowerCase() === 'identity')) headers[name.toLowerCase()] = v
  }
  return {
    size,
    etag: stableEtag(identity, validator, size),
    lastModified: validator.lastModified,
    contentType: h['content-type'] ?? null,
    headers,
    validator
  }
}

function stableEtag (identity: BlobIdentity, v: Validator, size: number | null): string {
  if (v.etag !== null && v.etag !== '') return v.etag
  if (identity.sha256 !== null) return `"${identity.sha256}"`
  const basis = `${identity.key}\n${size ?? ''}\n${v.lastModified ?? ''}`
  return `"${createHash('sha256').update(basis).digest('hex').slice(0, 32)}"`
}

/** What the index keeps of a verified blob under its key: its digest and the response to replay. */
export function committedEntry (meta: BlobMeta, digest: string, size: number, credential: string | null): KeyEntry {
  const base = { digest, size, contentType: meta.contentType, headers: meta.headers, validator: meta.validator, etag: meta.etag, fetchedAt: Date.now() }
  return credential === null ? { ...base, shareable: true } : { ...base, shareable: false, credential }
}
