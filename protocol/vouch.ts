import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Hmac } from 'node:crypto'

/**
 * Vouched reads of a download in flight (keyed clusters only). A member serving bytes it is still
 * downloading has no piece list to offer yet, so it vouches for them instead: after every VOUCH_FRAME
 * bytes of the range (the last frame may be shorter) it sends a VOUCH_TAG_BYTES tag, an HMAC under a
 * key derived from the cluster key over the blob, the frame's offsets and its bytes. The reader passes a
 * frame on only when its tag matches: the bytes are then the ones a key holder wrote at those offsets
 * (not altered on the wire, not a wrong slice), which is the trust a keyed cluster gives a complete
 * holder's piece list. The whole-blob digest check at the end still decides what is cached.
 *
 * The reader asks with `VOUCH_HEADER: 1`; a server that vouches answers with `VOUCH_HEADER:
 * hmac-sha256 <frame>` and the framed body (its Content-Length counts the tags).
 */
export const VOUCH_FRAME = 256 << 10
export const VOUCH_TAG_BYTES = 32
export const VOUCH_HEADER = 'x-aimirror-vouch'
export const VOUCH_SCHEME = `hmac-sha256 ${VOUCH_FRAME}`

/** The key tags are made with, derived from the cluster key (never the key itself on any wire). */
export function vouchKey (clusterKey: Uint8Array): Buffer {
  return createHmac('sha256', clusterKey).update('aimirror-vouch-v1').digest()
}

/** An HMAC for the frame [start, end) of blob `digest`, to be fed the frame's bytes. */
export function frameMac (key: Uint8Array, digest: string, start: number, end: number): Hmac {
  return createHmac('sha256', key).update(`aimirror-vouch-v1\0${digest}\0${start}\0${end}\0`)
}

/**
 * A holder's piece list comes with `LIST_MAC_HEADER: <hex>`, an HMAC under the same key over the blob and
 * the list, so in a keyed cluster nobody on the wire can hand a member a list (and bytes to match it).
 */
export const LIST_MAC_HEADER = 'x-aimirror-list-mac'

export function listMac (key: Uint8Array, digest: string, list: Uint8Array): string {
  return createHmac('sha256', key).update(`aimirror-list-v1\0${digest}\0`).update(list).digest('hex')
}

/** Whether `header` (a response's LIST_MAC_HEADER) vouches for `list` of blob `digest`. */
export function listMacMatches (key: Uint8Array, digest: string, list: Uint8Array, header: unknown): boolean {
  if (typeof header !== 'string') return false
  const want = Buffer.from(listMac(key, digest, list), 'hex')
  const got = Buffer.from(header, 'hex')
  return got.length === want.length && timingSafeEqual(got, want)
}

/** End of the frame holding `pos` of a range that starts at `rangeStart` and ends (exclusive) at `rangeEnd`. */
export function frameEnd (rangeStart: number, rangeEnd: number, pos: number): number {
  return Math.min(rangeEnd, rangeStart + (Math.floor((pos - rangeStart) / VOUCH_FRAME) + 1) * VOUCH_FRAME)
}

/** Bytes on the wire for a vouched range [start, end): the bytes and one tag per frame. */
export function vouchedLength (start: number, end: number): number {
  return end - start + Math.ceil((end - start) / VOUCH_FRAME) * VOUCH_TAG_BYTES
}
