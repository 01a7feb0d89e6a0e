import { createHash } from 'node:crypto'
import { isSha256Hex } from './cid.ts'

/**
 * What members ask each other about. A blob is named by its sha256 (hex) when the asker learned it
 * from upstream metadata; in a keyed cluster a download without a published digest (a GitHub release
 * asset, a file behind a generic `parallel` rule) is named by its cache key, `url:<canonical URL>`.
 * Members trust each other's URL names as they trust each other's bytes in flight: the cluster key
 * vouches for them (see node/cluster/README.md).
 */
export type BlobName = string

/** The longest URL name asked about (the control message stays small). */
export const MAX_URL_NAME = 4096

export function isUrlName (name: BlobName): boolean {
  return name.startsWith('url:')
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
