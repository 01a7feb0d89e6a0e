import type { SourceResponse } from '../fetch/upstream-source.ts'
import { isWeakEtag } from '../fetch/version.ts'
import type { PeerTicket } from './peer-client.ts'

/**
 * Which version of a blob a download fetches, and whether a member's copy is that one. A digest names
 * the same bytes whoever holds them, and the download checks them against it. A URL names whatever its
 * upstream serves now, and members may hold an older version: no digest checks the file, so the
 * download's first response sets the version (its ETag, else its Last-Modified) and only members whose
 * copy has the same are read; their responses carry their copy's ETag, which the download checks too.
 */
export class ContentVersion {
  private readonly byUrl: boolean
  private etag: string | null
  private lastModified: string | null
  private holderDigest: string | null = null
  private diverged = false

  /** Told once when complete holders of a URL name hold different bytes (see sameBytesAsHolders). */
  private readonly onDiverged: ((digests: [string, string], peer: string) => void) | undefined

  /** `first`: the validators of a first response the download already had (keyed by its final URL). */
  constructor (byUrl: boolean, first: { etag?: string, lastModified?: string } = {}, onDiverged?: (digests: [string, string], peer: string) => void) {
    this.byUrl = byUrl
    this.onDiverged = onDiverged
    this.etag = first.etag ?? null
    this.lastModified = first.lastModified ?? null
  }

  /** The download's first response, from the upstream or a member, sets the version when nothing did. */
  learn (headers: Readonly<Record<string, string>>): void {
    this.etag ??= headers.etag ?? null
    this.lastModified ??= headers['last-modified'] ?? null
  }

  /**
   * Whether a member's copy is the one this download fetches: a digest name always; a URL name when its
   * strong ETag is the download's, or, when the upstream gives none (or a weak one, which must agree
   * too), its Last-Modified (one side without what the other has is another version), and when it holds
   * the same bytes as other complete holders. Before any response (`responded` false: the upstream could
   * not be reached) the first member's copy sets the version.
   */
  matches (t: PeerTicket, responded: boolean): boolean {
    if (!this.byUrl) return true
    if (!this.sameBytesAsHolders(t)) return false
    if (!responded) return true
    // (A member's ETag is the one its clients see: the upstream's, or one it made when the upstream gave none.)
    if (this.etag !== null) {
      if (t.meta.etag !== this.etag) return false
      // A weak ETag may stay while the bytes change: the Last-Modified must agree too.
      if (!isWeakEtag(this.etag)) return true
    }
    if (this.lastModified !== null || t.meta.lastModified !== null) return t.meta.lastModified === this.lastModified
    // An upstream that gives no validator at all: nothing tells versions apart, on either side.
    return true
  }

  /**
   * Members that hold a URL name complete must hold the same bytes: the first one's sha256 is the one
   * read. Each unit checks out against its own holder's piece list, so units of two holders whose copies
   * differ (one fetched before the upstream replaced the file under the same ETag) would make a file
   * neither has.
   */
  private sameBytesAsHolders (t: PeerTicket): boolean {
    if (!t.complete || t.digest === undefined) return true
    this.holderDigest ??= t.digest
    if (t.digest === this.holderDigest) return true
    if (!this.diverged) this.onDiverged?.([this.holderDigest, t.digest], t.peer)
    this.diverged = true
    return false
  }

  /**
   * A later response (peer or upstream). Only the first sets the validator: a digest name's are checked
   * against the digest, not against whichever ETag the first source had, so theirs are dropped; a URL
   * name's are checked against the validator and kept.
   */
  later (res: SourceResponse): SourceResponse {
    if (this.byUrl) return res
    const { etag: _etag, 'last-modified': _lastModified, ...headers } = res.headers
    return { ...res, headers }
  }

  /** A URL name's peer response carries the ETag of the member's copy, which the download checks. */
  stamp (res: SourceResponse, t: PeerTicket): SourceResponse {
    if (!this.byUrl || t.meta.etag === null) return res
    return { ...res, headers: { ...res.headers, etag: t.meta.etag } }
  }
}

/** A first response from a member carries what clients are told about the blob, like a local cache hit would. */
export function withMeta (res: SourceResponse, t: PeerTicket): SourceResponse {
  const headers: Record<string, string> = { ...t.meta.headers, ...res.headers }
  if (t.meta.contentType !== null) headers['content-type'] = t.meta.contentType
  if (t.meta.etag !== null) headers.etag = t.meta.etag
  if (t.meta.lastModified !== null) headers['last-modified'] = t.meta.lastModified
  return { ...res, headers }
}
