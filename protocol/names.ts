import { createHash } from 'node:crypto'
import { isSha256Hex } from './cid.ts'

/**
 * What members ask each other about. A blob is named by its sha256 (hex) when the asker learned it
 * from upstream metadata, or by the cache key of another published digest (`sha512:<hex>` from npm,
 * `git-sha1:<hex>` from the HuggingFace Hub): the asker checks the bytes against it either way. In a
 * keyed cluster a download without a published digest (a GitHub release asset, a file behind a generic
 * `parallel` rule) is named by its cache key, `url:<canonical URL>`. Members trust each other's URL
 * names as they trust each other's bytes in flight: the cluster key vouches for them (see
 * node/cluster/README.md).
 */
export type BlobName = string

/** The longest URL name asked about (the control message stays small). */
export const MAX_URL_NAME = 4096

/** A URL name as the wire takes it (length aside: see MAX_URL_NAME). */
export const URL_NAME = /^url:https?:\/\/\S+$/

/** Whether a cache key can travel as a URL name. */
export function isWireUrlName (key: string): boolean {
  return key.length <= MAX_URL_NAME && URL_NAME.test(key)
}

export function isUrlName (name: BlobName): boolean {
  return name.startsWith('url:')
}

/** A digest other than sha256 in its cache-key form (sha1 is too weak to name content: not one). */
export const OTHER_DIGEST_NAME = /^(?:sha512:[0-9a-f]{128}|git-sha1:[0-9a-f]{40})$/

/**
 * Named by a cache key (a URL or another digest) rather than its sha256: the data port knows a download
 * of it by `nameId`, and a member holding it complete answers with the blob's sha256.
 */
export function isKeyName (name: BlobName): boolean {
  return !isSha256Hex(name)
}

/** The key a control message carries for a name: `sha256:<hex>`, or the URL name itself. */
export function wireKey (name: BlobName): string {
  return isSha256Hex(name) ? `sha256:${name}` : name
}

/** The name a control message's key carries. */
export function nameOfKey (key: string): BlobName {
  return key.startsWith('sha256:') ? key.slice('sha256:'.length) : key
}

/**
 * 64 hex digits naming the blob on the DHT and on the data port: the digest itself, or a hash of the
 * URL name (never the digest of any blob: its input is no blob's bytes).
 */
export function nameId (name: BlobName): string {
  if (isSha256Hex(name)) return name
  return createHash('sha256').update('aimirror url name\n').update(name).digest('hex')
}
