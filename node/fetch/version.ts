import { hasReason, UpstreamProtocolError } from '../errors.ts'
import type { Validator } from '../store/index-db.ts'

/**
 * A weak ETag (`W/"…"`) says two responses are equivalent, not that their bytes are the same: parts of
 * a file may be joined only under a strong one (RFC 9110, 13.1.1), or with the Last-Modified beside it.
 */
export function isWeakEtag (etag: string | null | undefined): boolean {
  return etag?.startsWith('W/') === true
}

/**
 * Whether a response is of the version a download began with: the same strong ETag; else the same
 * Last-Modified (and the same weak ETag, when there is one). A response that carries neither is taken
 * (nothing to compare).
 */
export function sameVersion (headers: Readonly<Record<string, string>>, known: Validator | undefined): boolean {
  if (known === undefined) return true
  const etag = headers.etag
  if (etag !== undefined && known.etag !== null) {
    if (etag !== known.etag) return false
    if (!isWeakEtag(etag)) return true
  }
  const lastModified = headers['last-modified']
  if (!hasStrongEtag(known) && known.lastModified !== null && lastModified !== undefined) return lastModified === known.lastModified
  return true
}

function hasStrongEtag (v: Validator): boolean {
  return v.etag !== null && !isWeakEtag(v.etag)
}

const CHANGED = 'changed'

/** An answer of another version of the file than the transfer began with. */
export function contentChanged (status: number): Error {
  return new UpstreamProtocolError('Upstream content changed during download', { detail: { status, reason: CHANGED } })
}

export function isContentChanged (err: unknown): boolean {
  return hasReason(err, CHANGED)
}

/**
 * Answers of another version in a row, at one position, after which a transfer fails: the first is
 * asked again at once (one edge of a CDN behind the others), the second ends it. Asking on with backoff
 * only delayed the failure by seconds and sent the same ranges again and again.
 */
export const CHANGED_IN_A_ROW = 2

const UNRESUMABLE = 'unresumable'

/**
 * Whether a download's version has nothing to tell it by: no strong ETag, no Last-Modified, and no
 * digest known (`known` undefined means the digest decides). A weak ETag alone does not: an upstream
 * may keep it (`W/"<size>"`) while the bytes change.
 */
export function unversioned (known: Validator | undefined): boolean {
  return known !== undefined && !hasStrongEtag(known) && known.lastModified === null
}

/** A whole-file stream of a file without a validator broke: asking again could give another version's rest. */
export function cannotResume (pos: number): Error {
  return new UpstreamProtocolError('Upstream gives the file no ETag or Last-Modified, so its broken transfer cannot be resumed safely', { detail: { pos, reason: UNRESUMABLE } })
}

/** Range answers that contradict themselves (see framingContradicts): the file is not to be had by ranges. */
export function rangesContradict (status: number): Error {
  return new UpstreamProtocolError('Upstream answers ranges with a Content-Length other than their Content-Range', { detail: { status, reason: UNRESUMABLE } })
}

export function isUnresumable (err: unknown): boolean {
  return hasReason(err, UNRESUMABLE)
}
