import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'

/**
 * Provider records name blobs by CID v1, codec raw, multihash sha2-256 of the blob's bytes: the same
 * sha256 the cache is keyed by, so the record can be made from the digest without reading the blob.
 */

const HEX64 = /^[0-9a-f]{64}$/

export function cidFromSha256 (hex: string): CID {
  if (!HEX64.test(hex)) throw new TypeError('expected a lower-case sha256 hex digest')
  return CID.createV1(raw.code, createDigest(sha256.code, Buffer.from(hex, 'hex')))
}

/** The sha256 hex a CID names, or null for any other kind of CID. */
export function sha256FromCid (cid: CID): string | null {
  if (cid.version !== 1 || cid.code !== raw.code || cid.multihash.code !== sha256.code || cid.multihash.size !== 32) return null
  return Buffer.from(cid.multihash.digest).toString('hex')
}

export function isSha256Hex (value: string): boolean {
  return HEX64.test(value)
}
