import type { BlobMeta } from '../fetch/response-meta.ts'

/**
 * How to answer a GET/HEAD for a blob: conditionals (If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since, If-Range), Range (`a-b`, `a-`, `-n`; multi-range is answered with the whole body),
 * 200/206/304/412/416 and the
 * headers that go with them. Pure: the strategy streams the chosen byte range.
 */

export interface BlobRequestHeaders {
  range?: string
  'if-range'?: string
  'if-none-match'?: string
  'if-modified-since'?: string
  'if-match'?: string
  'if-unmodified-since'?: string
}

export type BlobAnswer =
  | { status: 304 | 412 | 416, headers: Record<string, string> }
  | { status: 200 | 206, headers: Record<string, string>, start: number, end: number | null }

export type ParsedRange = { start: number, end: number } | 'unsatisfiable' | null

/** Parses a single byte range against `size`; null = no usable Range (serve the whole body). */
export function parseRange (header: string | undefined, size: number): ParsedRange {
  if (header === undefined) return null
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (m === null) return null
  const [, a = '', b = ''] = m
  if (a === '' && b === '') return null
  if (size === 0) return 'unsatisfiable'
  if (a === '') {
    const n = Number(b)
    if (n === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  let end = b === '' ? size - 1 : Number(b)
  if (b !== '' && end < start) return null
  if (start >= size) return 'unsatisfiable'
  end = Math.min(end, size - 1)
  return { start, end }
}

/** The first byte a Range asks for, before the size is known (a hint for the download). */
export function rangeStartHint (header: string | undefined): number {
  const m = header === undefined ? null : /^\s*bytes\s*=\s*(\d+)\s*-/i.exec(header)
  return m === null ? 0 : Number(m[1])
}

function etagList (header: string): string[] {
  return header.split(',').map(s => s.trim()).filter(s => s !== '')
}

const opaque = (tag: string): string => tag.replace(/^W\//, '')

function noneMatch (header: string, etag: string): boolean {
  return etagList(header).some(t => t === '*' || opaque(t) === opaque(etag))
}

function strongMatch (header: string, etag: string): boolean {
  return etagList(header).some(t => t === '*' || (!t.startsWith('W/') && !etag.startsWith('W/') && t === etag))
}

function modifiedSince (header: string | undefined, lastModified: string | null): boolean {
  if (header === undefined || lastModified === null) return false
  const since = Date.parse(header)
  const modified = Date.parse(lastModified)
  return Number.isFinite(since) && Number.isFinite(modified) && modified > since
}

function notModifiedSince (header: string | undefined, lastModified: string | null): boolean {
  if (header === undefined || lastModified === null) return false
  const since = Date.parse(header)
  const modified = Date.parse(lastModified)
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since
}

/** If-Range holds when it is the (strong) ETag or exactly the Last-Modified date. */
function ifRangeHolds (header: string | undefined, meta: BlobMeta): boolean {
  if (header === undefined) return true
  const v = header.trim()
  if (v.startsWith('"') || v.startsWith('W/')) return !v.startsWith('W/') && !meta.etag.startsWith('W/') && v === meta.etag
  return meta.lastModified !== null && v === meta.lastModified
}

const NOT_REPLAYED = new Set(['content-length', 'content-range', 'etag', 'accept-ranges', 'last-modified', 'transfer-encoding', 'connection'])

export function baseHeaders (meta: BlobMeta): Record<string, string> {
  const h: Record<string, string> = {}
  for (const [k, v] of Object.entries(meta.headers)) if (!NOT_REPLAYED.has(k)) h[k] = v
  h['content-type'] = meta.contentType ?? 'application/octet-stream'
  h.etag = meta.etag
  if (meta.lastModified !== null) h['last-modified'] = meta.lastModified
  h['accept-ranges'] = 'bytes'
  return h
}

export function answerBlobRequest (meta: BlobMeta, req: BlobRequestHeaders): BlobAnswer {
  const headers = baseHeaders(meta)
  // RFC 9110 §13.2.2: If-Match (strong comparison), else If-Unmodified-Since, before the rest.
  const im = req['if-match']
  if (im !== undefined ? !strongMatch(im, meta.etag) : modifiedSince(req['if-unmodified-since'], meta.lastModified)) {
    return { status: 412, headers: { etag: meta.etag, 'content-length': '0' } }
  }
  const inm = req['if-none-match']
  if (inm !== undefined ? noneMatch(inm, meta.etag) : notModifiedSince(req['if-modified-since'], meta.lastModified)) {
    const h: Record<string, string> = { etag: meta.etag }
    if (meta.lastModified !== null) h['last-modified'] = meta.lastModified
    return { status: 304, headers: h }
  }
  const size = meta.size
  if (size === null) {
    // Length still unknown (no Content-Length, no Range upstream): stream the whole body, chunked.
    return { status: 200, headers, start: 0, end: null }
  }
  const range = ifRangeHolds(req['if-range'], meta) ? parseRange(req.range, size) : null
  if (range === 'unsatisfiable') {
    return { status: 416, headers: { ...headers, 'content-range': `bytes */${size}`, 'content-length': '0' } }
  }
  if (range === null) {
    return { status: 200, headers: { ...headers, 'content-length': String(size) }, start: 0, end: size }
  }
  headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`
  headers['content-length'] = String(range.end - range.start + 1)
  return { status: 206, headers, start: range.start, end: range.end + 1 }
}
