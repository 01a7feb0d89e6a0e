import { createCipheriv, createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

/**
 * Vouched reads of a download in flight (keyed clusters only). A member serving bytes it is still
 * downloading has no piece list to offer yet, so it vouches for them instead: after every VOUCH_FRAME
 * bytes of the range (the last frame may be shorter) it sends a VOUCH_TAG_BYTES tag, a GMAC (AES-256-GCM
 * over no plaintext) over the blob, the frame's offsets and its bytes. The reader passes a frame on only
 * when its tag matches: the bytes are then the ones a key holder wrote at those offsets (not altered on
 * the wire, not a wrong slice), which is the trust a keyed cluster gives a complete holder's piece list.
 * The whole-blob digest check at the end still decides what is cached.
 *
 * GMAC, not HMAC-SHA256: both ends already hash every byte of the blob for its digest, and a second
 * SHA-256 pass over every shared byte cost the CPU-bound 4-node download about a fifth of its time;
 * GMAC runs on the AES and carry-less multiply instructions at a few times the speed. Its nonces must
 * never repeat under one key, so each response has a key of its own, derived from the cluster's vouch
 * key and a random nonce the server names in its answer, and frame i of the response uses IV i.
 *
 * The reader asks with `VOUCH_HEADER: 1`; a server that vouches answers with `VOUCH_HEADER:
 * <VOUCH_SCHEME> <nonce hex>` and the framed body (its Content-Length counts the tags).
 */
export const VOUCH_FRAME = 256 << 10
export const VOUCH_TAG_BYTES = 16
export const VOUCH_HEADER = 'x-aimirror-vouch'
export const VOUCH_SCHEME = `gmac-aes256 ${VOUCH_FRAME}`
const NONCE_BYTES = 16

/**
 * The key vouching derives from the cluster key (never the key itself on any wire). Keys are KeyObjects:
 * node:crypto tells a raw key from a KeyObject by a check that throws, and on a deep stack the throw
 * cost ~0.1 ms per cipher or HMAC made (a second of CPU per GiB shared, at one cipher per frame).
 */
export function vouchKey (clusterKey: Uint8Array): KeyObject {
  return createSecretKey(createHmac('sha256', clusterKey).update('aimirror-vouch-v1').digest())
}

/** A fresh response nonce and the header value that names it. */
export function newVouchNonce (): { nonce: Buffer, header: string } {
  const nonce = randomBytes(NONCE_BYTES)
  return { nonce, header: `${VOUCH_SCHEME} ${nonce.toString('hex')}` }
}

/** The nonce a server's VOUCH_HEADER names, or null when it does not vouch in this scheme. */
export function vouchNonce (header: unknown): Buffer | null {
  if (typeof header !== 'string' || !header.startsWith(`${VOUCH_SCHEME} `)) return null
  const hex = header.slice(VOUCH_SCHEME.length + 1)
  return /^[0-9a-f]{32}$/.test(hex) ? Buffer.from(hex, 'hex') : null
}

/** The key of one response's tags. */
export function responseKey (key: KeyObject, nonce: Uint8Array): KeyObject {
  return createSecretKey(createHmac('sha256', key).update('aimirror-vouch-response-v1\0').update(nonce).digest())
}

/** A running tag over one frame. */
export interface FrameMac {
  update: (bytes: Uint8Array) => void
  digest: () => Buffer
}

/** The tag of frame `index` of a response, over [start, end) of blob `digest`, to be fed the frame's bytes. */
export function frameMac (key: KeyObject, digest: string, index: number, start: number, end: number): FrameMac {
  const iv = Buffer.alloc(12)
  iv.writeUIntBE(index, 6, 6)
  const gcm = createCipheriv('aes-256-gcm', key, iv)
  gcm.setAAD(Buffer.from(`aimirror-vouch-v1\0${digest}\0${start}\0${end}\0`))
  return {
    update: bytes => { gcm.setAAD(bytes) },
    digest: () => {
      gcm.final()
      return gcm.getAuthTag()
    }
  }
}

/**
 * A holder's piece list comes with `LIST_MAC_HEADER: <hex>`, an HMAC under the same key over the blob and
 * the list, so in a keyed cluster nobody on the wire can hand a member a list (and bytes to match it).
 */
export const LIST_MAC_HEADER = 'x-aimirror-list-mac'

export function listMac (key: KeyObject, digest: string, list: Uint8Array): string {
  return createHmac('sha256', key).update(`aimirror-list-v1\0${digest}\0`).update(list).digest('hex')
}

/** Whether `header` (a response's LIST_MAC_HEADER) vouches for `list` of blob `digest`. */
export function listMacMatches (key: KeyObject, digest: string, list: Uint8Array, header: unknown): boolean {
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
