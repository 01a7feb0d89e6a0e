import { isAimirrorError } from '../errors.ts'
import type { Source, SourceResponse } from '../fetch/upstream-source.ts'
import type { Logger } from '../log.ts'
import type { Bans } from './bans.ts'
import type { PeerClient, PeerTicket } from './peer-client.ts'
import type { Holder, LookupOptions } from './routing.ts'
import { PeerCorruptError } from './verifying-body.ts'

export interface SwarmSourceComponents {
  peers: PeerClient
  bans: Bans
  lookup: (digest: string, options: LookupOptions) => Promise<Holder[]>
  logger: Logger
  onBan?: (peer: string) => void
}

export interface SwarmSourceInit {
  /** sha256 hex the download is verified against (learned from upstream metadata). */
  digest: string
  upstream: Source
  /** How long the first request waits for the cluster before going upstream. */
  lookupMs: number
}

/**
 * A download's source when the cluster is on: every range goes to a peer that holds the complete blob
 * (verified unit by unit against its piece list, the whole file against the digest by the download),
 * and to the upstream only when no peer has it or every peer failed. The first request waits for the
 * cluster's answer at most `lookupMs`; members that all say no let it go upstream at once.
 * A peer whose bytes fail verification is banned and the range is fetched elsewhere.
 */
export class SwarmSource implements Source {
  readonly name = 'swarm'
  private readonly c: SwarmSourceComponents
  private readonly init: SwarmSourceInit
  private holders: Promise<Holder[]> | null = null
  /** Holders the DHT found after the first request had gone its way; later ranges use them. */
  private readonly late: Holder[] = []
  private next = 0
  private responses = 0
  private readonly failed = new Set<string>()

  constructor (components: SwarmSourceComponents, init: SwarmSourceInit) {
    this.c = components
    this.init = init
  }

  async fetch (range: { start: number, end: number } | null, options: { signal?: AbortSignal } = {}): Promise<SourceResponse> {
    const first = this.responses === 0
    const res = range === null ? null : await this.fromPeers(range, options.signal)
    const out = res ?? await this.init.upstream.fetch(range, options)
    this.responses++
    // Only the first response sets the validator: later ones (peers or upstream) are checked against
    // the digest, not against whichever ETag the first source had.
    if (!first) {
      const { etag: _etag, ...headers } = out.headers
      return { ...out, headers }
    }
    return out
  }

  private async fromPeers (range: { start: number, end: number }, signal?: AbortSignal): Promise<SourceResponse | null> {
    this.holders ??= this.c.lookup(this.init.digest, { budgetMs: this.init.lookupMs, onHolder: h => this.late.push(h) }).catch(() => [])
    const holders = [...(await this.holders), ...this.late].filter(h => h.answer.state === 'complete')
    for (let tries = 0; tries < holders.length; tries++) {
      const h = holders[(this.next++) % holders.length] as Holder
      if (this.failed.has(h.peer) || this.c.bans.isBanned(h.peer)) continue
      try {
        const ticket = await this.c.peers.ticket(h.peer, this.init.digest, { signal })
        if (range.start >= ticket.size) return null
        const list = await this.c.peers.pieceList(ticket, { signal })
        const res = await this.c.peers.fetchRange(ticket, list, range.start, range.end, { signal })
        res.body.once('error', (err: unknown) => { if (err instanceof PeerCorruptError) this.ban(h.peer, err) })
        return this.responses === 0 ? withMeta(res, ticket) : res
      } catch (err) {
        if (signal?.aborted === true) throw err
        if (isAimirrorError(err) && err.code === 'ERR_ABORTED') throw err
        this.failed.add(h.peer)
        this.c.logger.debug({ peer: h.peer, err: (err as Error).message }, 'peer source failed; trying elsewhere')
      }
    }
    return null
  }

  private ban (peer: string, err: PeerCorruptError): void {
    this.failed.add(peer)
    const ms = this.c.bans.ban(peer)
    this.c.peers.forget(peer)
    this.c.onBan?.(peer)
    this.c.logger.warn({ peer, digest: this.init.digest, piece: err.piece, banMs: ms }, 'peer sent corrupt bytes; banned')
  }
}

/** The first response carries what clients are told about the blob, like a local cache hit would. */
function withMeta (res: SourceResponse, t: PeerTicket): SourceResponse {
  const headers: Record<string, string> = { ...t.meta.headers, ...res.headers }
  if (t.meta.contentType !== null) headers['content-type'] = t.meta.contentType
  if (t.meta.etag !== null) headers.etag = t.meta.etag
  if (t.meta.lastModified !== null) headers['last-modified'] = t.meta.lastModified
  return { ...res, headers }
}
