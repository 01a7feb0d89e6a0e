import type { KeyObject } from 'node:crypto'
import { WireError } from '../../protocol/errors.ts'
import { LIMITS } from '../../protocol/ids.ts'
import type { HaveAnswer, TicketAnswer } from '../../protocol/messages.ts'
import { isKeyName, isUrlName, nameId, nameOfKey } from '../../protocol/names.ts'
import { issueTicket } from '../../protocol/ticket.ts'
import type { Fetcher, InFlightBlob } from '../fetch/fetcher.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { PieceLists } from './piece-lists.ts'
import type { SwarmSource } from './swarm-source.ts'
import { lruCache } from '../lru.ts'

export interface BlobAnswersComponents {
  store: BlobStore
  fetcher: Fetcher
  pieceLists: PieceLists
  logger: Logger
  /** The swarm source of this node's download of `key` (which ranges it fetches from the upstream). */
  swarm: (key: string) => SwarmSource | undefined
}

export interface BlobAnswersInit {
  /** A cluster key: URL names are answered (protocol/names.ts). */
  keyed: boolean
  /** Signs the data port's tickets. */
  ticketSecret: KeyObject
}

/** Key names (URLs, other digests) of downloads in flight whose tickets members hold, by the id the data port knows them by. */
const KEY_NAMES_KEPT = 1024

/**
 * What this node tells members about its blobs, by the key they ask with (`sha256:<hex>`, another
 * digest's key, or in a keyed cluster a URL name): whether it has it (complete, or downloading it and
 * which ranges), a ticket for the data port, a re-check of its copy on a member's report; and the data
 * port's way to a download in flight.
 */
export class BlobAnswers {
  private readonly c: BlobAnswersComponents
  private readonly init: BlobAnswersInit
  private readonly keyNames = lruCache<string, string>(KEY_NAMES_KEPT)
  /** Blobs re-hashed on a member's report within the last minute. */
  private readonly rechecked = lruCache<string, true>(1024, { ttl: 60_000 })

  constructor (components: BlobAnswersComponents, init: BlobAnswersInit) {
    this.c = components
    this.init = init
  }

  /**
   * The sha256 of the committed blob `key` names here: a sha256 held, the entry of another digest, or
   * (keyed) a shareable URL entry's.
   */
  private async held (key: string): Promise<string | null> {
    if (key.startsWith('sha256:')) {
      const digest = nameOfKey(key)
      return await this.c.store.hasDigest(digest, { forPeer: true }) ? digest : null
    }
    if (isUrlName(key) && !this.init.keyed) return null
    // A download in flight is not held yet, and its answer must not wait behind an index read (see have).
    if (this.c.fetcher.inFlight(key) !== null) return null
    const entry = await this.c.store.index.getKey(key)
    if (entry === undefined || (isUrlName(key) && entry.shareable !== true)) return null
    return await this.c.store.hasDigest(entry.digest, { forPeer: true }) ? entry.digest : null
  }

  /**
   * The download in flight `key` names here, if members may read it: asked without a client's
   * credentials, and (a URL name) in a keyed cluster.
   */
  private flying (key: string): InFlightBlob | null {
    const f = this.c.fetcher.inFlight(key)
    if (f === null || !f.shareable) return null
    return !isUrlName(key) || this.init.keyed ? f : null
  }

  /** The data port's way to a download in flight: `sha256:<id>`, the id of a digest or a key name (see ticket). */
  inFlightById (key: string): InFlightBlob | null {
    const named = this.keyNames.get(nameOfKey(key))
    return this.flying(named ?? key)
  }

  async have (key: string): Promise<HaveAnswer> {
    const held = await this.held(key)
    if (held !== null) return { t: 'have', state: 'complete', size: this.c.store.blobSize(held) }
    // From the download's memory, not the index: under load the index's reads queue behind file
    // reads in the thread pool, and an answer that comes late leaves the asker fetching our units.
    const flying = this.flying(key)
    const pieces = flying?.pieces() ?? null
    if (flying !== null && pieces !== null && pieces.bitmap.length <= LIMITS.maxMessageBytes / 2) {
      const active = this.c.swarm(key)?.upstreamReads()
      // The bitmap counts whole pieces (up to 16 MiB); the written ranges show the units done in
      // pieces still filling, which askers would otherwise fetch again from the upstream.
      const written = flying.written(1024)
      return { t: 'have', state: 'partial', size: flying.size, pieceSize: pieces.pieceSize, bitmap: pieces.bitmap, active, written }
    }
    // Just started (size not known yet): still a downloader the asker splits the work with.
    // (A URL name's download says nothing before it is known to be shareable.)
    if (flying !== null || (!isUrlName(key) && this.c.fetcher.downloadsShareable(key))) return { t: 'have', state: 'partial' }
    return { t: 'have', state: 'none' }
  }

  /**
   * A member found this node's bytes of a blob wrong: hash the copy again (at most once a minute per
   * blob, whoever asks), dropping a rotten blob so neither peers nor this node's clients get it again.
   */
  async recheck (key: string, peer: string): Promise<HaveAnswer> {
    // Reports name the digest of the copy that was read (a key name's is in its ticket).
    if (!key.startsWith('sha256:')) return await this.have(key)
    const digest = nameOfKey(key)
    if (!this.rechecked.has(digest)) {
      this.rechecked.set(digest, true)
      const held = await this.c.pieceLists.recheck(digest)
      this.c.logger.warn({ peer, digest, held }, held ? 'a peer reported corrupt bytes; the blob still matches its digest (its piece list was made again)' : 'a peer reported corrupt bytes; the blob no longer matches its digest and was dropped')
    }
    return await this.have(key)
  }

  /**
   * A ticket for the data port. A committed blob is read by its sha256 (told to askers of another name);
   * a download in flight by the id of its name, which the data port maps back to the download.
   */
  async ticket (key: string, peer: string, ip: string, port: number, cert: string | undefined): Promise<TicketAnswer> {
    const expiresAt = Date.now() + LIMITS.ticketTtlMs
    const answer = (id: string, size: number, complete: boolean, meta: TicketAnswer['meta']): TicketAnswer =>
      ({ t: 'ticket', ticket: issueTicket(this.init.ticketSecret, { digest: id, peer, ip, exp: expiresAt }), port, cert, expiresAt, size, complete, meta })
    const byKey = isKeyName(nameOfKey(key))
    const held = await this.held(key)
    if (held === null) {
      // A download in flight: its bytes are read along as they land, and the asker verifies the blob.
      const flying = this.flying(key)
      if (flying === null) throw new WireError('NOT_FOUND', 'blob not held')
      const id = nameId(nameOfKey(key))
      if (byKey) this.keyNames.set(id, key)
      const m = flying.meta
      return answer(id, flying.size, false, { contentType: m.contentType, etag: m.etag, lastModified: m.lastModified, headers: m.headers })
    }
    const entry = await this.c.store.index.getKey(key)
    const meta = { contentType: entry?.contentType ?? null, etag: entry?.etag ?? null, lastModified: entry?.validator.lastModified ?? null, headers: entry?.headers ?? {} }
    return { ...answer(held, this.c.store.blobSize(held) ?? 0, true, meta), ...(byKey ? { digest: held } : {}) }
  }
}
