import { hasReason, UpstreamProtocolError } from '../errors.ts'
import type { Validator } from '../store/index-db.ts'

/**
 * Whether a response is of the version a download began with: the same ETag, or, when the upstream
 * gives none, the same Last-Modified. A response that carries neither is taken (nothing to compare).
 */
export function sameVersion (headers: Readonly<Record<string, string>>, known: Validator | undefined): boolean {
  if (known === undefined) return true
  const etag = headers.etag
  if (etag !== undefined && known.etag !== null) return etag === known.etag
  const lastModified = headers['last-modified']
  if (known.etag === null && known.lastModified !== null && lastModified !== undefined) return lastModified === known.lastModified
  return true
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
 * Whether a download's version has nothing to tell it by: no ETag, no Last-Modified, and no digest
 * known (`known` undefined means the digest decides).
 */
export function unversioned (known: Validator | undefined): boolean {
  return known !== undefined && known.etag === null && known.lastModified === null
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
