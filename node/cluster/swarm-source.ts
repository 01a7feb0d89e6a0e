import { UpstreamUnreachableError } from '../errors.ts'
import { isKeyName, isUrlName } from '../../protocol/names.ts'
import { PIECE_HASH_UNIT } from '../../protocol/pieces.ts'
import { LEARNING_RANGE } from '../fetch/final-keys.ts'
import type { Source, SourceFetchOptions, SourceResponse, SuspectRange } from '../fetch/upstream-source.ts'
import { ContentVersion } from './content-version.ts'
import { ownerOf, SHARE_UNIT } from './ownership.ts'
import { InFlightList } from './in-flight-list.ts'
import { SwarmBlame } from './swarm-blame.ts'
import type { SwarmBlameComponents } from './swarm-blame.ts'
import { SwarmView } from './swarm-view.ts'
import { UpstreamSteps, YOUNG_MS } from './upstream-steps.ts'
import type { SwarmViewComponents, SwarmViewInit } from './swarm-view.ts'
import { MemberLiveness } from './member-liveness.ts'
import { HolderPace } from './holder-pace.ts'
import { PeerReads } from './peer-reads.ts'
import { GONE, MemberRanges } from './member-ranges.ts'

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
  private responses = 0
  private readonly members: MemberRanges
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
    // Members' copies of one URL at one version that differ: fetched before the upstream changed the file
    // under the same validator, or a member that stored wrong bytes. Only one copy is read; said, as it
    // will not mend itself until those copies are fetched again.
    this.version = new ContentVersion(this.byUrl, init, (digests, peer) => {
      components.logger.warn({ name: init.name, digests, peer }, 'members hold different copies of one URL at one version (ETag): only one of them is read')
    })
    const save = components.saveList
    this.inOrder = save === undefined
      ? undefined
      : new InFlightList({ digest: isKeyName(init.name) ? null : init.name, save, shared: () => this.view.shared() })
    this.members = new MemberRanges({
      c: components,
      name: init.name,
      stallMs: init.stallMs,
      view: this.view,
      reads: this.reads,
      liveness: this.liveness,
      blame: this.blame,
      version: this.version,
      pace: this.pace,
      inOrder: this.inOrder,
      responses: () => this.responses
    })
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
      const held = await this.members.fromHolders(range, options)
      if (held !== null) return held
      // Ends: every GONE leaves a peer out for a while (MemberLiveness), and fewer peers are left to route to.
      const res = await this.members.fromDownloader(range, options)
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
   * short step taken before the split was known), or one of the units it owns (see MemberRanges.fromDownloader).
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
