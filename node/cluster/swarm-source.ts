import { setTimeout as sleep } from 'node:timers/promises'
import { WireError } from '../../protocol/errors.ts'
import { UpstreamUnreachableError } from '../errors.ts'
import { isKeyName, isUrlName } from '../../protocol/names.ts'
import { PIECE_HASH_UNIT } from '../../protocol/pieces.ts'
import { LEARNING_RANGE } from '../fetch/final-keys.ts'
import { discardBody } from '../fetch/upstream-source.ts'
import type { Source, SourceFetchOptions, SourceResponse, SuspectRange } from '../fetch/upstream-source.ts'
import { ContentVersion, withMeta } from './content-version.ts'
import { ownerOf, SHARE_UNIT } from './ownership.ts'
import { isSlowPeer } from './peer-client.ts'
import type { PeerTicket } from './peer-client.ts'
import { InFlightList } from './in-flight-list.ts'
import { SwarmBlame } from './swarm-blame.ts'
import type { SwarmBlameComponents } from './swarm-blame.ts'
import { SwarmView } from './swarm-view.ts'
import { UpstreamSteps, YOUNG_MS } from './upstream-steps.ts'
import type { SwarmViewComponents, SwarmViewInit } from './swarm-view.ts'
import { PeerCorruptError } from './verifying-body.ts'
import { MemberLiveness } from './member-liveness.ts'
import { HolderPace } from './holder-pace.ts'
import { PeerLeftError, PeerReads } from './peer-reads.ts'

export { PeerLeftError } from './peer-reads.ts'

export interface SwarmSourceComponents extends SwarmViewComponents, Omit<SwarmBlameComponents, 'peers'> {
  /** Keeps the piece-hash list the download made of the blob (it matched its digest). */
  saveList?: (digest: string, list: Buffer) => void
}

export interface SwarmSourceInit extends SwarmViewInit {
  upstream: Source
  /**
   * The download's first response came from the upstream before this source (it learned the URL the
   * download is keyed by): the ranges asked next are its other connections', routed as after a first response.
   */
  started?: boolean
  /** With `started`: the ETag of that first response (what a member's copy of a URL name must match). */
  etag?: string
  /** With `started`: its Last-Modified (compared instead when nobody has an ETag). */
  lastModified?: string
  /** A peer range without a new byte for this long is taken as stalled: an overlapping ask goes upstream. */
  stallMs?: number
  /**
   * The upstream just failed to answer this URL (unreachable, 5xx): the first range is asked of the
   * members, and fails with the upstream's error when none holds the file (not asked of the upstream again).
   */
  upstreamDown?: boolean
}

/** The first range of a blob named by its URL, which learns the upstream's version of it. */
export const URL_FIRST = LEARNING_RANGE

/** Ranges in flight at once when a peer holding the whole blob serves it. */
const HOLDER_CONNECTIONS = 8
/** Ranges in flight beyond the rule's concurrency for each member downloading the same blob. */
const DOWNLOADER_CONNECTIONS = 8

/** What fromDownloader answers when the peer it chose turned out gone: route the range again. */
const GONE = Symbol('gone')

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
  private readonly view: SwarmView
  private next = 0
  private responses = 0
  private readonly byUrl: boolean
  private readonly version: ContentVersion
  /** Units whose read from a downloader failed, and from whom: they go upstream while that peer is a member. */
  private readonly reads = new PeerReads()
  private readonly liveness: MemberLiveness
  private readonly blame: SwarmBlame
  private readonly upstream: UpstreamSteps
  private readonly pace = new HolderPace()
  private saidSlow = false
  /** The blob's piece-hash list, made as the download hashes it (see InFlightList). */
  readonly inOrder: InFlightList | undefined

  constructor (components: SwarmSourceComponents, init: SwarmSourceInit) {
    this.c = components
    this.init = init
    this.view = new SwarmView(components, init)
    this.liveness = new MemberLiveness(this.view, this.reads, components.logger, init.name)
    this.upstream = new UpstreamSteps(init.upstream)
    this.blame = new SwarmBlame(components, init.name, peer => { this.view.exclude(peer) })
    if (init.started === true) this.responses = 1
    this.byUrl = isUrlName(init.name)
    this.version = new ContentVersion(this.byUrl, init)
    const save = components.saveList
    this.inOrder = save === undefined
      ? undefined
      : new InFlightList({ digest: isKeyName(init.name) ? null : init.name, save, shared: () => this.view.shared() })
  }

  async fetch (range: { start: number, end: number } | null, options: SourceFetchOptions = {}): Promise<SourceResponse> {
    const first = this.responses === 0
    let res: SourceResponse | null = null
    if (range !== null && first && this.byUrl && this.init.upstreamDown === true) {
      res = await this.fromMembers(range, { signal: options.signal, verifiedOnly: options.verifiedOnly })
      if (res === null) throw new UpstreamUnreachableError('Upstream unreachable, and no member holds the file')
    } else if (range !== null && first && this.byUrl) {
      res = await this.learnVersion(range, options)
    } else if (range !== null) {
      res = await this.fromMembers(range, options)
      // Just back from a pause of this node: routed again once the view caught up with the members.
      if (res === null && await this.view.caughtUpAfterPause(options.signal)) res = await this.fromMembers(range, options)
    }
    // An open cluster's members are checked against their own word only: the download's digest decides.
    const out = res === null ? await this.fromUpstream(range, options) : this.c.peers.vouched ? res : { ...res, needsDigest: true }
    this.responses++
    if (!first) return this.version.later(out)
    this.version.learn(out.headers)
    return out
  }

  /**
   * A URL names whatever its upstream serves now, and members may hold an older version: the first range
   * (short) comes from the upstream, and its ETag decides which members' copies are read. A member's
   * copy is still better than nothing when the upstream cannot be reached.
   */
  private async learnVersion (range: { start: number, end: number }, options: SourceFetchOptions): Promise<SourceResponse> {
    let down: SourceResponse
    try {
      down = await this.init.upstream.fetch({ start: range.start, end: Math.min(range.end, range.start + URL_FIRST - 1) }, options)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      const res = await this.fromMembers(range, { signal: options.signal, verifiedOnly: options.verifiedOnly })
      if (res === null) throw err
      return res
    }
    // A 4xx is the upstream's word (gone, or not for this client); a 5xx says only that it is down.
    if (down.status < 500) return down
    const res = await this.fromMembers(range, { signal: options.signal, verifiedOnly: options.verifiedOnly })
    if (res === null) return down
    await down.body.dump().catch(() => {})
    return res
  }

  /**
   * The range from a member that holds the blob, else from one downloading it; null when none can. A
   * caller that takes only verified bytes (no digest check before its last byte) reads members only in a
   * keyed cluster: in an open one a holder's piece list and a download's bytes are the member's own word.
   */
  private async fromMembers (range: { start: number, end: number }, options: SourceFetchOptions): Promise<SourceResponse | null> {
    if (options.verifiedOnly === true && !this.c.peers.vouched) return null
    await this.view.ready(this.responses)
    // Slow holders keep their reads; the ranges beyond them go to the upstream.
    if (this.responses > 0 && this.pace.slowRate !== null && this.holderReads() >= HOLDER_CONNECTIONS) return null
    for (;;) {
      const held = await this.fromHolders(range, options)
      if (held !== null) return held
      // Ends: every GONE leaves a peer out for a while (MemberLiveness), and fewer peers are left to route to.
      const res = await this.fromDownloader(range, options)
      if (res !== GONE) return res
    }
  }

  /** A member asked whether this node has the blob: it is downloading it too (see SwarmView.heardFrom). */
  heardFrom (peer: string): void {
    this.view.heardFrom(peer)
  }

  /** Ranges [start, end) being fetched from the upstream right now (what other downloaders may read along). */
  upstreamReads (): Array<[number, number]> {
    return this.upstream.reads()
  }

  private async fromUpstream (range: { start: number, end: number } | null, options: SourceFetchOptions): Promise<SourceResponse> {
    return await this.upstream.fetch(range, {
      first: this.responses === 0,
      settling: Date.now() - this.view.startedAt < YOUNG_MS || this.view.lostRecently(YOUNG_MS),
      shared: this.view.members('partial').length > 0
    }, options)
  }

  /**
   * Members hold or download the blob: its pieces are the cluster's units, each asked of one member in
   * one request. Otherwise the upstream alone serves it, in the engine's own (smaller) pieces, as with
   * the cluster off.
   */
  maxAutoPiece (): number | undefined {
    return this.sharedByMembers() ? SHARE_UNIT : undefined
  }

  /**
   * Members hold or download the blob: ranges keep to the units a peer verifies whole. A range cut in
   * a unit this node fetches from the upstream itself may be cut anywhere: an upstream that throttles
   * each connection brings a MiB in seconds, and its owner's readers wait for all of it (an 8 MiB blob
   * shared by 3 nodes took twice as long as one node alone, each unit on at most 4 connections).
   */
  alignment (offset?: number): number | undefined {
    if (!this.sharedByMembers()) return undefined
    return offset !== undefined && this.fromUpstreamHere(offset) ? undefined : PIECE_HASH_UNIT
  }

  /**
   * Whether the bytes at `offset` come from the upstream to this node: a range fetched from it now (a
   * short step taken before the split was known), or one of the units it owns (see fromDownloader).
   */
  private fromUpstreamHere (offset: number): boolean {
    if (this.upstream.fetching(offset)) return true
    if (this.view.members('complete').length > 0) return false
    const downloaders = this.view.members('partial')
    if (this.view.downloaderWith(downloaders, offset, offset) !== null) return false
    return ownerOf(Math.floor(offset / SHARE_UNIT), [this.c.self, ...downloaders]) === this.c.self
  }

  private sharedByMembers (): boolean {
    return this.view.members('complete').length + this.view.members('partial').length > 0
  }

  /**
   * A complete holder serves from its page cache over the LAN: a few connections keep it busy.
   * Otherwise the rule's connections plus a few per member downloading the blob too, read from it as
   * its upstream connections bring them. More would queue at its data port behind bytes it has not
   * fetched yet (a run with 64 per member had owners serving hundreds of idle in-flight reads and the
   * askers giving up on them).
   */
  rangesInFlight (concurrency: number): number {
    if (this.view.members('complete').length > 0) return this.holdersSlow() ? HOLDER_CONNECTIONS + concurrency : HOLDER_CONNECTIONS
    return concurrency + Math.min(this.view.members('partial').length, 7) * DOWNLOADER_CONNECTIONS
  }

  /** Reads under way at the members holding the blob. */
  private holderReads (): number {
    return this.view.members('complete').reduce((n, peer) => n + this.reads.inFlight(peer), 0)
  }

  /**
   * Whether the holders serve this download slowly (see HolderPace): then the upstream takes the ranges
   * beyond theirs on the rule's connections, and the faster source gets more of the work.
   */
  private holdersSlow (): boolean {
    const slow = this.pace.judge(this.holderReads() >= HOLDER_CONNECTIONS / 2, Date.now(), this.c.returnedAt?.() ?? 0)
    if (slow && !this.saidSlow) {
      this.saidSlow = true
      this.c.logger.info({ name: this.init.name, holders: this.view.members('complete'), bytesPerSecond: Math.round(this.pace.slowRate ?? 0) }, 'members holding the blob serve it slowly: the upstream takes part')
    }
    return slow
  }

  /** See SwarmBlame.onDigestMismatch. */
  onDigestMismatch (): SuspectRange[] {
    return this.blame.onDigestMismatch()
  }

  convict (peers: ReadonlySet<string>): void {
    this.blame.convict(peers)
  }

  private async fromHolders (range: { start: number, end: number }, options: SourceFetchOptions): Promise<SourceResponse | null> {
    const { signal } = options
    const holders = this.view.members('complete')
    // The holder with the fewest reads under way first (in turn among equals): a faster one finishes
    // its reads sooner and so takes more of them; one on a slow link or a busy machine keeps few.
    const turn = this.next++
    this.pace.asked()
    const ordered = holders.map((_, i) => holders[(turn + i) % holders.length] as string)
      .map(peer => ({ peer, load: this.reads.inFlight(peer) }))
      .sort((x, y) => x.load - y.load)
    for (const { peer } of ordered) {
      if (!this.view.usable(peer)) continue
      // A holder whose reads went quiet may have frozen: a ping says whether to ask it again.
      if (await this.liveness.quietAndGone(peer)) continue
      const { read, asked } = this.reads.start(peer, range.start, range.end + 1, signal)
      try {
        const ticket = await this.c.peers.ticket(peer, this.init.name, { signal: asked })
        if (!this.version.matches(ticket, this.responses > 0)) { this.view.exclude(peer); this.reads.drop(read); continue }
        if (range.start >= ticket.size) { this.reads.drop(read); return null }
        const list = await this.c.peers.pieceList(ticket, { signal: asked })
        const res = await this.c.peers.fetchRange(ticket, list, range.start, range.end, {
          signal: asked,
          takesVolatile: options.takesVolatile,
          onUnit: (i, hash) => {
            read.lastByteAt = Date.now()
            this.pace.delivered(PIECE_HASH_UNIT, read.lastByteAt)
            this.inOrder?.known(i, hash)
          }
        })
        this.reads.answered(read, res)
        res.body.once('error', (err: unknown) => { if (err instanceof PeerCorruptError) this.blame.ban(peer, ticket.digest, err.piece) })
        this.view.succeeded(peer)
        this.blame.holder(peer, ticket.digest)
        return this.responses === 0 ? withMeta(res, ticket) : this.version.stamp(res, ticket)
      } catch (err) {
        this.reads.drop(read)
        if (signal?.aborted !== true && (read.cut.signal.aborted || await this.liveness.isGone(peer))) continue
        this.view.peerFailed(peer, err, signal)
      }
    }
    return null
  }

  /**
   * The range's unit from its owner among the nodes downloading this blob, if that is not us. An owner
   * found gone (it died or froze) leaves the download (GONE) and the range is routed again: its units now
   * have other owners, the same on every member, so one of them fetches each from the upstream, not all;
   * and the others may have committed the blob meanwhile, so holders are asked first again.
   */
  private async fromDownloader (range: { start: number, end: number }, options: SourceFetchOptions): Promise<SourceResponse | null | typeof GONE> {
    const { signal } = options
    const verifiedOnly = options.verifiedOnly === true
    const downloaders = this.view.members('partial')
    if (downloaders.length === 0) return null
    const unit = Math.floor(range.start / SHARE_UNIT)
    let end = Math.min(range.end, (unit + 1) * SHARE_UNIT - 1)
    // A downloader that has the range, or is fetching it from its upstream right now (it started
    // earlier), serves it, whoever owns the unit; otherwise the unit's owner does. A unit whose read
    // failed here goes upstream, unless another downloader has the range (a node back from a freeze
    // fails its first reads while the others hold the units they took over from it).
    const failed = this.liveness.failedOn(unit)
    const has = this.view.downloaderWith(failed === undefined ? downloaders : downloaders.filter(p => p !== failed), range.start, end)
    if (has === null && await this.liveness.failedHere(unit)) return null
    // A duplicate of a read that went quiet: the peer is asked whether it is still there first (frozen,
    // its units get other owners and the range is routed again); a live one just lost this range.
    const stalled = this.reads.stalled(range.start, range.end + 1, this.init.stallMs ?? 4000, peer => this.view.usable(peer))
    if (stalled !== null) return await this.liveness.isGone(stalled) ? GONE : null
    if (has !== null) end = has.end
    // A pass-through (verified bytes only) is no download: this node owns no units then.
    const owner = has?.peer ?? ownerOf(unit, verifiedOnly ? downloaders : [this.c.self, ...downloaders])
    if (owner === null || owner === this.c.self) return null
    if (await this.liveness.quietAndGone(owner)) return GONE
    const { read, asked } = this.reads.start(owner, range.start, end + 1, signal)
    let delivered = 0
    let ticket: PeerTicket
    let res: SourceResponse
    try {
      // The first range (a client's first byte) never waits for a peer that is just starting.
      ticket = await this.ticketFrom(owner, asked, this.responses > 0 ? 1000 : 0)
      if (!this.version.matches(ticket, this.responses > 0)) { this.view.exclude(owner); this.reads.drop(read); return null }
      if (range.start >= ticket.size) { this.reads.drop(read); return null }
      res = await this.c.peers.fetchInFlight(ticket, range.start, end, {
        signal: asked,
        takesVolatile: options.takesVolatile,
        onProgress: () => { read.lastByteAt = Date.now() },
        onUnverified: n => { delivered += n }
      })
    } catch (err) {
      this.reads.drop(read)
      // The owner has no download of the blob (it has just started one, or its own went no further: a
      // cache too small for the blob): it is left out until a look shows it downloading, and the range
      // goes to the unit's owner among the others, the same on every member (the upstream, if this node).
      if (err instanceof WireError && err.code === 'NOT_FOUND' && signal?.aborted !== true) {
        // An owner that had the size was downloading the blob: most likely it is committing it now (every
        // member's last ranges would otherwise go to the upstream at once). Read it as a holder then.
        if (this.view.answer(owner)?.size !== undefined && await this.view.becameHolder(owner, signal)) return await this.fromHolders(range, { signal })
        this.view.forget(owner)
        return GONE
      }
      if (signal?.aborted !== true && (read.cut.signal.aborted || await this.liveness.isGone(owner))) return GONE
      this.liveness.failed(unit, owner)
      // A loaded owner may answer late or drop a connection: that unit goes upstream, but the owner
      // keeps the rest of its share (a member that died leaves the membership). Dropping it at the first
      // timeout sent every member's whole share of a busy owner upstream (1.2–1.4 × the blob).
      if (isSlowPeer(err) && signal?.aborted !== true) {
        this.c.logger.debug({ peer: owner, err: (err as Error).message, unit, start: range.start, end: end + 1 }, 'peer read failed; this unit goes upstream')
        return null
      }
      this.view.peerFailed(owner, err, signal)
      return null
    }
    this.view.succeeded(owner)
    if (verifiedOnly && res.unverified === true) {
      // Its download could not vouch for these bytes (no tags on them): the caller cannot wait for the digest.
      this.reads.drop(read)
      discardBody(res.body)
      return null
    }
    this.blame.downloader(owner)
    this.reads.answered(read, res)
    // What it sent unverified, in order from the range's start: judged if the blob fails its digest.
    if (res.unverified === true) res.body.once('close', () => { if (delivered > 0) this.blame.delivered(owner, range.start, range.start + delivered) })
    res.body.once('error', (err: unknown) => {
      if (!(err instanceof PeerLeftError)) this.liveness.failed(unit, owner)
      // A frame whose tag did not match: the owner has no finished copy to re-check, only a ban.
      if (err instanceof PeerCorruptError) this.blame.ban(owner, null, err.piece)
    })
    const along = { ...res, readAlong: true }
    return this.responses === 0 ? withMeta(along, ticket) : this.version.stamp(along, ticket)
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
        return await this.c.peers.ticket(peer, this.init.name, { signal })
      } catch (err) {
        const starting = this.view.answer(peer)?.size === undefined
        if (!(err instanceof WireError && err.code === 'NOT_FOUND') || !starting || Date.now() > until) throw err
        await sleep(50, undefined, { signal })
      }
    }
  }

  /** Its download ended: the members need not be looked at any more. */
  finished (): void {
    this.view.stop()
  }

  /** See MemberLiveness. */
  memberLeft (peer: string): void {
    this.liveness.memberLeft(peer)
  }

  memberJoined (peer: string): void {
    this.liveness.memberJoined(peer)
  }
}
