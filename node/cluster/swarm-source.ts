import { setTimeout as sleep } from 'node:timers/promises'
import { WireError } from '../../protocol/errors.ts'
import { isAimirrorError } from '../errors.ts'
import type { Source, SourceResponse } from '../fetch/upstream-source.ts'
import type { Logger } from '../log.ts'
import type { Bans } from './bans.ts'
import { ownerOf, SHARE_UNIT } from './ownership.ts'
import type { PeerClient, PeerTicket } from './peer-client.ts'
import { InFlightList } from './in-flight-list.ts'
import type { Holder, LookupOptions } from './routing.ts'
import { PeerCorruptError } from './verifying-body.ts'

export interface SwarmSourceComponents {
  peers: PeerClient
  bans: Bans
  lookup: (digest: string, options: LookupOptions) => Promise<Holder[]>
  logger: Logger
  /** This node's peer id (it owns its share of the units too). */
  self: string
  /** False once a peer left the cluster (its process died, its connection closed): its units move. */
  isMember?: (peer: string) => boolean
  /** Tells a holder its bytes failed here (it re-checks its copy). */
  reportCorrupt?: (peer: string, digest: string) => void
  onBan?: (peer: string) => void
  /** Keeps the piece-hash list the download made of the blob (it matched its digest). */
  saveList?: (digest: string, list: Buffer) => void
}

export interface SwarmSourceInit {
  /** sha256 hex the download is verified against (learned from upstream metadata). */
  digest: string
  upstream: Source
  /** How long the first request waits for the cluster before going upstream. */
  lookupMs: number
  /** How often the view of other holders and downloaders is refreshed while ranges are asked for. */
  refreshMs?: number
  /** A peer range without a new byte for this long is taken as stalled: an overlapping ask goes upstream. */
  stallMs?: number
}

/**
 * For this long after a download starts, its upstream requests are cut to STEP bytes: members asked
 * "at the same moment" start up to a few hundred ms apart and answer only once their download exists,
 * so the first ranges are picked before the split is known. Short steps let the rest of each range be
 * routed again with a fresher view (a shorter 206 is asked again at once) instead of every connection
 * committing a whole piece to the upstream.
 */
const YOUNG_MS = 2000
const STEP = 1 << 20

/** How long the look taken before a shared download's ranges are picked may wait for the other downloaders. */
const SHARED_LOOKUP_MS = 500

/** A peer whose requests keep failing this long (not refusing: see REFUSALS) is left out of the download. */
const FAILING_MS = 5000
/** Answers that end a peer's part in a download at once. */
const REFUSALS: ReadonlySet<string> = new Set(['NOT_MEMBER', 'WRONG_CLUSTER', 'BAD_MESSAGE'])

/** How long a downloader that stopped serving its download in flight may take to commit the blob. */
const COMMIT_PATIENCE_MS = 2000

/** The view stops being refreshed this long after the download last asked for a range (it ended). */
const IDLE_STOP_MS = 10_000

/** Ranges in flight at once when a peer holding the whole blob serves it. */
const HOLDER_CONNECTIONS = 8
/** Ranges in flight beyond the rule's concurrency for each member downloading the same blob. */
const DOWNLOADER_CONNECTIONS = 8

/** A range being read from a peer's download in flight. */
interface PeerRead { start: number, end: number, lastByteAt: number }

/**
 * A download's source when the cluster is on.
 * - A range goes to a peer holding the complete blob when there is one (verified unit by unit against
 *   its piece list; the whole file against the digest by the download).
 * - Otherwise, when other members are downloading the same blob, the units (SHARE_UNIT) are split
 *   between all downloaders by `ownerOf`: a node fetches its own units from the upstream and reads the
 *   others' from their owners as they land there. In a keyed cluster the owner vouches for each frame
 *   of them (protocol/vouch.ts) and they pass at once; in an open cluster they are unverified until the
 *   whole blob matched its digest, and the download holds them back from readers until then.
 * - The upstream takes everything else: no peer, a peer that failed, a unit whose peer read stalled.
 * The first request waits for the cluster's answer at most `lookupMs`; members that all say no let it
 * go upstream at once. A peer whose bytes fail verification is banned and the range fetched elsewhere;
 * when the whole blob fails its digest, every peer that sent unverified bytes for it is banned.
 */
export class SwarmSource implements Source {
  readonly name = 'swarm'
  private readonly c: SwarmSourceComponents
  private readonly init: SwarmSourceInit
  private readonly answers = new Map<string, Holder['answer']>()
  private firstLookup: Promise<void> | null = null
  private startedAt = 0
  private secondLookup: Promise<void> | null = null
  private lookedAt = 0
  private lookups = 0
  private refreshing = false
  private refresher: NodeJS.Timeout | null = null
  private lastFetchAt = 0
  private next = 0
  private responses = 0
  private readonly failed = new Set<string>()
  private readonly failedUnits = new Set<number>()
  private readonly reads = new Set<PeerRead>()
  private readonly contributors = new Set<string>()
  private readonly upstreamActive = new Set<{ start: number, end: number }>()
  private readonly holderChecks = new Map<string, Promise<boolean>>()
  /** When requests to a peer started failing without a success since (see peerFailed). */
  private readonly failingSince = new Map<string, number>()
  /** The blob's piece-hash list, made as the download hashes it (see InFlightList). */
  readonly inOrder: InFlightList | undefined

  constructor (components: SwarmSourceComponents, init: SwarmSourceInit) {
    this.c = components
    this.init = init
    const save = components.saveList
    this.inOrder = save === undefined
      ? undefined
      : new InFlightList({ digest: init.digest, save, shared: () => [...this.answers.keys()].some(peer => this.usable(peer)) })
  }

  async fetch (range: { start: number, end: number } | null, options: { signal?: AbortSignal } = {}): Promise<SourceResponse> {
    const first = this.responses === 0
    this.lastFetchAt = Date.now()
    let res: SourceResponse | null = null
    if (range !== null) {
      await this.view()
      res = await this.fromHolders(range, options.signal) ?? await this.fromDownloaders(range, options.signal)
    }
    const out = res ?? await this.fromUpstream(range, options)
    this.responses++
    // Only the first response sets the validator: later ones (peers or upstream) are checked against
    // the digest, not against whichever ETag the first source had.
    if (!first) {
      const { etag: _etag, ...headers } = out.headers
      return { ...out, headers }
    }
    return out
  }

  /**
   * A member asked whether this node has the blob: only a download asks, so it is downloading the blob
   * too. Taken into the split at once rather than at the next refresh, whose answer a loaded member
   * may give hundreds of ms later while both fetch the same units.
   */
  heardFrom (peer: string): void {
    if (peer === this.c.self || this.answers.has(peer) || !this.usable(peer)) return
    this.answers.set(peer, { t: 'have', state: 'partial' })
    this.c.logger.debug({ digest: this.init.digest, peer: peer.slice(-6) }, 'swarm view: a member downloading the blob asked')
  }

  /** Ranges [start, end) being fetched from the upstream right now (what other downloaders may read along). */
  upstreamReads (): Array<[number, number]> {
    return [...this.upstreamActive].slice(0, 1024).map(r => [r.start, r.end])
  }

  private async fromUpstream (range: { start: number, end: number } | null, options: { signal?: AbortSignal }): Promise<SourceResponse> {
    // The first range too: every member asked at the same moment takes its first range from the
    // upstream before any of them knows the others, so it is short.
    if (range !== null && Date.now() - this.startedAt < YOUNG_MS && range.end - range.start + 1 > STEP) {
      range = { start: range.start, end: range.start + STEP - 1 }
    }
    const res = await this.init.upstream.fetch(range, options)
    if (res.status === 206 && res.contentRange !== null) {
      const r = { start: res.contentRange.start, end: res.contentRange.end + 1 }
      this.upstreamActive.add(r)
      res.body.once('close', () => { this.upstreamActive.delete(r) })
    }
    return res
  }

  /**
   * A complete holder serves from its page cache over the LAN: a few connections keep it busy.
   * Otherwise the rule's connections plus a few per member downloading the blob too, read from it as
   * its upstream connections bring them. More would queue at its data port behind bytes it has not
   * fetched yet (a run with 64 per member had owners serving hundreds of idle in-flight reads and the
   * askers giving up on them).
   */
  rangesInFlight (concurrency: number): number {
    let downloaders = 0
    for (const [peer, a] of this.answers) {
      if (!this.usable(peer)) continue
      if (a.state === 'complete') return HOLDER_CONNECTIONS
      if (a.state === 'partial') downloaders++
    }
    return concurrency + Math.min(downloaders, 7) * DOWNLOADER_CONNECTIONS
  }

  onDigestMismatch (): void {
    for (const peer of this.contributors) {
      this.failed.add(peer)
      const ms = this.c.bans.ban(peer)
      this.c.peers.forget(peer)
      this.c.onBan?.(peer)
      this.c.logger.warn({ peer, digest: this.init.digest, banMs: ms }, 'blob failed its digest after a peer sent unverified bytes; peer banned')
    }
  }

  /** The first lookup is awaited (within its budget); later ones refresh the view in the background. */
  private async view (): Promise<void> {
    if (this.firstLookup === null) {
      this.startedAt = Date.now()
      this.firstLookup = this.lookup(this.init.lookupMs)
      await this.firstLookup
      return
    }
    await this.firstLookup
    // The first response is in and the other ranges are about to be picked: members asked at the same
    // moment have started their downloads by now. Without this second look every connection would take
    // its first range from the upstream before the split is known.
    // When another member is downloading the blob too, this look waits longer for its answer (a busy
    // member answers late): without the ranges it has fetched, every unit this node owns goes to the
    // upstream, including those that member took in its own first burst.
    if (this.responses > 0) {
      const sharing = [...this.answers.values()].some(a => a.state === 'partial')
      this.secondLookup ??= this.lookup(sharing ? Math.max(this.init.lookupMs, SHARED_LOOKUP_MS) : this.init.lookupMs, false, 2000)
      await this.secondLookup
    }
    this.refresh()
    // Ranges are asked for in bursts (every connection at the start, then as ranges complete, seconds
    // later): the view is kept fresh in between, so the next burst already knows the split.
    this.refresher ??= setInterval(() => {
      if (Date.now() - this.lastFetchAt > IDLE_STOP_MS) {
        clearInterval(this.refresher ?? undefined)
        this.refresher = null
      } else this.refresh()
    }, 100)
    this.refresher.unref()
  }

  /**
   * Early refreshes come quickly: nodes asked "at the same moment" start tens or hundreds of ms apart,
   * and until one is seen its units are fetched twice. (Every 50 ms cost more CPU than it saved.)
   * Members answering after the half second are still recorded, for up to 2 s (busy nodes answer late).
   */
  private refresh (): void {
    const every = Math.min(this.init.refreshMs ?? 500, 100 * 2 ** this.lookups)
    if (this.refreshing || Date.now() - this.lookedAt < every) return
    this.refreshing = true
    this.lookup(500, false, 2000).finally(() => { this.refreshing = false }).catch(() => {})
  }

  private async lookup (budgetMs: number, dht = true, lateMs = budgetMs): Promise<void> {
    this.lookedAt = Date.now()
    this.lookups++
    const record = (h: Holder): void => {
      if (h.peer !== this.c.self) this.answers.set(h.peer, h.answer)
    }
    // The first lookup lets the DHT go on in the background (holders it finds later are recorded);
    // refreshes ask the members only.
    const started = Date.now()
    const found = await this.c.lookup(this.init.digest, { budgetMs, backgroundMs: dht ? undefined : lateMs, onHolder: record, dht }).catch(() => [])
    for (const h of found) record(h)
    this.c.logger.debug({ digest: this.init.digest, lookup: this.lookups, ms: Date.now() - started, found: found.map(h => `${h.peer.slice(-6)}:${h.answer.state}`) }, 'swarm view')
  }

  private usable (peer: string): boolean {
    return !this.failed.has(peer) && !this.c.bans.isBanned(peer) && this.c.isMember?.(peer) !== false
  }

  private async fromHolders (range: { start: number, end: number }, signal?: AbortSignal): Promise<SourceResponse | null> {
    const holders = [...this.answers].filter(([peer, a]) => a.state === 'complete' && this.usable(peer)).map(([peer]) => peer)
    for (let tries = 0; tries < holders.length; tries++) {
      const peer = holders[(this.next++) % holders.length] as string
      if (!this.usable(peer)) continue
      try {
        const ticket = await this.c.peers.ticket(peer, this.init.digest, { signal })
        if (range.start >= ticket.size) return null
        const list = await this.c.peers.pieceList(ticket, { signal })
        const res = await this.c.peers.fetchRange(ticket, list, range.start, range.end, { signal, onUnit: (i, hash) => { this.inOrder?.known(i, hash) } })
        res.body.once('error', (err: unknown) => { if (err instanceof PeerCorruptError) this.ban(peer, err) })
        this.failingSince.delete(peer)
        return this.responses === 0 ? withMeta(res, ticket) : res
      } catch (err) {
        this.peerFailed(peer, err, signal)
      }
    }
    return null
  }

  /** The range's unit from its owner among the nodes downloading this blob, if that is not us. */
  private async fromDownloaders (range: { start: number, end: number }, signal?: AbortSignal): Promise<SourceResponse | null> {
    const downloaders = [...this.answers].filter(([peer, a]) => a.state === 'partial' && this.usable(peer)).map(([peer]) => peer)
    if (downloaders.length === 0) return null
    const unit = Math.floor(range.start / SHARE_UNIT)
    if (this.failedUnits.has(unit) || this.stalledOverlap(range.start, range.end + 1)) return null
    let end = Math.min(range.end, (unit + 1) * SHARE_UNIT - 1)
    // A downloader that has the range, or is fetching it from its upstream right now (it started
    // earlier), serves it, whoever owns the unit; otherwise the unit's owner does.
    const has = this.downloaderWith(downloaders, range.start, end)
    if (has !== null) end = has.end
    const owner = has?.peer ?? ownerOf(unit, [this.c.self, ...downloaders])
    if (owner === null || owner === this.c.self) return null
    const read: PeerRead = { start: range.start, end: end + 1, lastByteAt: Date.now() }
    let ticket: PeerTicket
    let res: SourceResponse
    try {
      // The first range (a client's first byte) never waits for a peer that is just starting.
      ticket = await this.ticketFrom(owner, signal, this.responses > 0 ? 1000 : 0)
      if (range.start >= ticket.size) return null
      res = await this.c.peers.fetchInFlight(ticket, range.start, end, { signal, onProgress: () => { read.lastByteAt = Date.now() } })
    } catch (err) {
      // The owner's download has just started (no size yet): this range goes upstream, later ones
      // of the unit are asked again.
      if (err instanceof WireError && err.code === 'NOT_FOUND' && signal?.aborted !== true) {
        // An owner that had the size was downloading the blob: most likely it is committing it now (every
        // member's last ranges would otherwise go to the upstream at once). Read it as a holder then.
        if (this.answers.get(owner)?.size !== undefined && await this.becameHolder(owner, signal)) return await this.fromHolders(range, signal)
        // Not downloading it (any more): forgotten until a refresh says otherwise.
        this.answers.delete(owner)
        return null
      }
      this.failedUnits.add(unit)
      // A loaded owner may answer late or drop a connection: that unit goes upstream, but the owner
      // keeps the rest of its share (a member that died leaves the membership). Dropping it at the first
      // timeout sent every member's whole share of a busy owner upstream (1.2–1.4 × the blob).
      if (isSlowPeer(err) && signal?.aborted !== true) {
        this.c.logger.debug({ peer: owner, err: (err as Error).message, unit, start: range.start, end: end + 1 }, 'peer read failed; this unit goes upstream')
        return null
      }
      this.peerFailed(owner, err, signal)
      return null
    }
    this.failingSince.delete(owner)
    this.contributors.add(owner)
    this.reads.add(read)
    res.body.once('close', () => { this.reads.delete(read) })
    res.body.once('error', (err: unknown) => {
      this.failedUnits.add(unit)
      // A frame whose tag did not match: the owner has no finished copy to re-check, only a ban.
      if (err instanceof PeerCorruptError) this.ban(owner, err, false)
    })
    return this.responses === 0 ? withMeta(res, ticket) : res
  }

  /**
   * Whether a downloader that stopped serving the blob in flight holds it complete within
   * COMMIT_PATIENCE_MS (it verified the blob and is moving it into its store). One check per peer at a
   * time: every connection of the download meets the same answer.
   */
  private async becameHolder (peer: string, signal?: AbortSignal): Promise<boolean> {
    let check = this.holderChecks.get(peer)
    if (check === undefined) {
      check = this.pollHolder(peer, signal).finally(() => { this.holderChecks.delete(peer) })
      this.holderChecks.set(peer, check)
    }
    return await check
  }

  private async pollHolder (peer: string, signal?: AbortSignal): Promise<boolean> {
    const until = Date.now() + COMMIT_PATIENCE_MS
    for (;;) {
      // The cached ticket is for the download in flight: a new one says whether the blob is committed.
      this.c.peers.forgetTicket(peer, this.init.digest)
      const t = await this.c.peers.ticket(peer, this.init.digest, { signal }).catch(() => null)
      if (t?.complete === true) {
        this.answers.set(peer, { t: 'have', state: 'complete', size: t.size })
        return true
      }
      if (signal?.aborted === true || Date.now() + 100 > until || !this.usable(peer)) return false
      await sleep(100, undefined, { signal }).catch(() => {})
    }
  }

  /**
   * A ticket from a downloader. One that has just started (no size yet: its first response is on the
   * way) is asked again for up to a second rather than given up at once: taking its units from the
   * upstream meanwhile would fetch them twice.
   */
  private async ticketFrom (peer: string, signal: AbortSignal | undefined, patienceMs: number): Promise<PeerTicket> {
    const until = Date.now() + patienceMs
    for (;;) {
      try {
        return await this.c.peers.ticket(peer, this.init.digest, { signal })
      } catch (err) {
        const starting = this.answers.get(peer)?.size === undefined
        if (!(err instanceof WireError && err.code === 'NOT_FOUND') || !starting || Date.now() > until) throw err
        await sleep(50, undefined, { signal })
      }
    }
  }

  /**
   * A downloader whose last report has [start, end] (inclusive): every piece in its bitmap, or a range
   * it has on disk or is fetching from its upstream that starts at or before `start` (then `end` is
   * cut to that range).
   */
  private downloaderWith (downloaders: string[], start: number, end: number): { peer: string, end: number } | null {
    for (const peer of downloaders) {
      const a = this.answers.get(peer)
      if (a?.bitmap !== undefined && a.pieceSize !== undefined && a.pieceSize > 0) {
        const bits = Buffer.from(a.bitmap, 'base64')
        let all = true
        for (let i = Math.floor(start / a.pieceSize); i <= Math.floor(end / a.pieceSize) && all; i++) {
          all = ((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0
        }
        if (all) return { peer, end }
      }
      for (const ranges of [a?.written, a?.active]) {
        for (const [s, e] of ranges ?? []) {
          if (s <= start && start < e) return { peer, end: Math.min(end, e - 1) }
        }
      }
    }
    return null
  }

  /** A range overlapping a peer read that went quiet is a duplicate of a stalled one: not that peer again. */
  private stalledOverlap (start: number, end: number): boolean {
    const quiet = Date.now() - (this.init.stallMs ?? 4000)
    for (const r of this.reads) if (r.start < end && start < r.end && r.lastByteAt < quiet) return true
    return false
  }

  /**
   * A request to a peer failed. A refusal ends the peer's part in this download; anything else (a
   * closed stream, a timeout, a busy peer) does only when it goes on for FAILING_MS without a success:
   * a member dropped at one broken stream left its whole share to the upstream (0.15 × the blob).
   */
  private peerFailed (peer: string, err: unknown, signal?: AbortSignal): void {
    if (signal?.aborted === true) throw err
    if (isAimirrorError(err) && err.code === 'ERR_ABORTED') throw err
    const now = Date.now()
    const since = this.failingSince.get(peer) ?? now
    this.failingSince.set(peer, since)
    const refused = err instanceof WireError && REFUSALS.has(err.code)
    if (!refused && now - since < FAILING_MS) {
      this.c.logger.debug({ peer, err: (err as Error).message }, 'peer request failed; trying elsewhere this time')
      return
    }
    this.failed.add(peer)
    this.c.logger.debug({ peer, err: (err as Error).message }, 'peer source failed; trying elsewhere')
  }

  private ban (peer: string, err: PeerCorruptError, report = true): void {
    if (report) this.c.reportCorrupt?.(peer, this.init.digest)
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

/** A peer that answered too late or dropped the connection: slow or busy, not known to be gone. */
function isSlowPeer (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_SOCKET'
}
