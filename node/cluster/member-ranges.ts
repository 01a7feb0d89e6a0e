import { setTimeout as sleep } from 'node:timers/promises'
import { WireError } from '../../protocol/errors.ts'
import { PIECE_HASH_UNIT } from '../../protocol/pieces.ts'
import { STALL_MS } from '../fetch/connection-pool.ts'
import { discardBody } from '../fetch/upstream-source.ts'
import type { SourceFetchOptions, SourceResponse } from '../fetch/upstream-source.ts'
import { withMeta } from './content-version.ts'
import type { ContentVersion } from './content-version.ts'
import type { HolderPace } from './holder-pace.ts'
import type { InFlightList } from './in-flight-list.ts'
import type { MemberLiveness } from './member-liveness.ts'
import { ownerOf, SHARE_UNIT } from './ownership.ts'
import { isSlowPeer } from './peer-client.ts'
import type { PeerTicket } from './peer-client.ts'
import { PeerLeftError } from './peer-reads.ts'
import type { PeerReads } from './peer-reads.ts'
import type { SwarmBlame } from './swarm-blame.ts'
import type { SwarmView, SwarmViewComponents } from './swarm-view.ts'
import { PeerCorruptError } from './verifying-body.ts'

/** Reads a holder may break before the download leaves it out. */
const HOLDER_STRIKES = 2

/** What fromDownloader answers when the peer it chose turned out gone: route the range again. */
export const GONE = Symbol('gone')

/** A swarm download's parts the member reads use (see SwarmSource). */
export interface MemberRangesParts {
  c: Pick<SwarmViewComponents, 'peers' | 'self' | 'logger'>
  /** The blob as members are asked about it. */
  name: string
  /** A peer range without a new byte for this long is taken as stalled. */
  stallMs?: number
  view: SwarmView
  reads: PeerReads
  liveness: MemberLiveness
  blame: SwarmBlame
  version: ContentVersion
  pace: HolderPace
  inOrder: InFlightList | undefined
  /** Responses the download had so far (0: the range asked is its first). */
  responses: () => number
}

/**
 * A range read from a member: from one holding the complete blob (verified unit by unit against its
 * piece list), or from the member downloading it that owns the range's unit (read along as it lands).
 */
export class MemberRanges {
  private readonly p: MemberRangesParts
  private next = 0
  /** Reads each holder broke off (see strike). */
  private readonly strikes = new Map<string, number>()

  constructor (parts: MemberRangesParts) {
    this.p = parts
  }

  async fromHolders (range: { start: number, end: number }, options: SourceFetchOptions): Promise<SourceResponse | null> {
    const { signal } = options
    const holders = this.p.view.members('complete')
    // A duplicate of a read gone quiet at a holder (the download duplicates a range after STALL_MS
    // without a byte; a holder on the LAN brings a unit in a small part of that) comes from elsewhere: a
    // frozen disk or a stuck handler would hang it too. No strike for it: a holder on a busy machine is
    // quiet at times (counting those sent a whole download of 3 nodes to the upstream, 1.7 ×); one that
    // stays stuck breaks its reads at their timeout.
    const stuck = this.p.reads.stalled(range.start, range.end + 1, STALL_MS / 2, peer => holders.includes(peer) && this.p.view.usable(peer))
    if (stuck !== null) {
      await this.p.liveness.isGone(stuck)
      return null
    }
    // The holder with the fewest reads under way first (in turn among equals): a faster one finishes
    // its reads sooner and so takes more of them; one on a slow link or a busy machine keeps few.
    const turn = this.next++
    this.p.pace.asked()
    const ordered = holders.map((_, i) => holders[(turn + i) % holders.length] as string)
      .map(peer => ({ peer, load: this.p.reads.inFlight(peer) }))
      .sort((x, y) => x.load - y.load)
    for (const { peer } of ordered) {
      if (!this.p.view.usable(peer)) continue
      // A holder whose reads went quiet may have frozen: a ping says whether to ask it again.
      if (await this.p.liveness.quietAndGone(peer)) continue
      const { read, asked } = this.p.reads.start(peer, range.start, range.end + 1, signal)
      try {
        const ticket = await this.p.c.peers.ticket(peer, this.p.name, { signal: asked })
        if (!this.p.version.matches(ticket, this.p.responses() > 0)) { this.p.view.exclude(peer); this.p.reads.drop(read); continue }
        if (range.start >= ticket.size) { this.p.reads.drop(read); return null }
        const list = await this.p.c.peers.pieceList(ticket, { signal: asked })
        const res = await this.p.c.peers.fetchRange(ticket, list, range.start, range.end, {
          signal: asked,
          takesVolatile: options.takesVolatile,
          onUnit: (i, hash) => {
            read.lastByteAt = Date.now()
            this.p.pace.delivered(PIECE_HASH_UNIT, read.lastByteAt)
            this.p.inOrder?.known(i, hash)
          }
        })
        this.p.reads.answered(read, res)
        res.body.once('error', (err: unknown) => {
          if (err instanceof PeerCorruptError) this.p.blame.ban(peer, ticket.digest, err.piece)
          else if (!(err instanceof PeerLeftError) && signal?.aborted !== true && !read.cut.signal.aborted) this.strike(peer, err)
        })
        this.p.view.succeeded(peer)
        this.p.blame.holder(peer, ticket.digest)
        return this.p.responses() === 0 ? withMeta(res, ticket) : this.p.version.stamp(res, ticket)
      } catch (err) {
        this.p.reads.drop(read)
        if (signal?.aborted !== true && (read.cut.signal.aborted || await this.p.liveness.isGone(peer))) continue
        this.p.view.peerFailed(peer, err, signal)
      }
    }
    return null
  }

  /**
   * A holder broke off a read (or it timed out) while it stays in the cluster. Once is a hiccup (its
   * range is asked again); twice leaves it out of the rest of the download, whose ranges then go to
   * other holders or the upstream (a holder that broke every read held a client for 20 s, then failed it).
   */
  private strike (peer: string, err: unknown): void {
    const n = (this.strikes.get(peer) ?? 0) + 1
    this.strikes.set(peer, n)
    if (n < HOLDER_STRIKES) return
    this.p.view.exclude(peer)
    // Its reads still open are asked again elsewhere now, not at their read timeout.
    this.p.reads.cut(peer)
    this.p.c.logger.info({ peer, name: this.p.name, err: (err as Error).message }, 'a member holding the blob broke off its reads; the rest of this download comes from elsewhere')
  }

  /**
   * The range's unit from its owner among the nodes downloading this blob, if that is not us. An owner
   * found gone (it died or froze) leaves the download (GONE) and the range is routed again: its units now
   * have other owners, the same on every member, so one of them fetches each from the upstream, not all;
   * and the others may have committed the blob meanwhile, so holders are asked first again.
   */
  async fromDownloader (range: { start: number, end: number }, options: SourceFetchOptions): Promise<SourceResponse | null | typeof GONE> {
    const { signal } = options
    const verifiedOnly = options.verifiedOnly === true
    const downloaders = this.p.view.members('partial')
    if (downloaders.length === 0) return null
    const unit = Math.floor(range.start / SHARE_UNIT)
    let end = Math.min(range.end, (unit + 1) * SHARE_UNIT - 1)
    // A downloader that has the range, or is fetching it from its upstream right now (it started
    // earlier), serves it, whoever owns the unit; otherwise the unit's owner does. A unit whose read
    // failed here goes upstream, unless another downloader has the range (a node back from a freeze
    // fails its first reads while the others hold the units they took over from it).
    const failed = this.p.liveness.failedOn(unit)
    const has = this.p.view.downloaderWith(failed === undefined ? downloaders : downloaders.filter(p => p !== failed), range.start, end)
    if (has === null && await this.p.liveness.failedHere(unit)) return null
    // A duplicate of a read that went quiet: the peer is asked whether it is still there first (frozen,
    // its units get other owners and the range is routed again); a live one just lost this range.
    const stalled = this.p.reads.stalled(range.start, range.end + 1, this.p.stallMs ?? 4000, peer => this.p.view.usable(peer))
    if (stalled !== null) return await this.p.liveness.isGone(stalled) ? GONE : null
    if (has !== null) end = has.end
    // A pass-through (verified bytes only) is no download: this node owns no units then.
    const owner = has?.peer ?? ownerOf(unit, verifiedOnly ? downloaders : [this.p.c.self, ...downloaders])
    if (owner === null || owner === this.p.c.self) return null
    if (await this.p.liveness.quietAndGone(owner)) return GONE
    const { read, asked } = this.p.reads.start(owner, range.start, end + 1, signal)
    let delivered = 0
    let ticket: PeerTicket
    let res: SourceResponse
    try {
      // The first range (a client's first byte) never waits for a peer that is just starting.
      ticket = await this.ticketFrom(owner, asked, this.p.responses() > 0 ? 1000 : 0)
      if (!this.p.version.matches(ticket, this.p.responses() > 0)) { this.p.view.exclude(owner); this.p.reads.drop(read); return null }
      if (range.start >= ticket.size) { this.p.reads.drop(read); return null }
      res = await this.p.c.peers.fetchInFlight(ticket, range.start, end, {
        signal: asked,
        takesVolatile: options.takesVolatile,
        onProgress: () => { read.lastByteAt = Date.now() },
        onUnverified: n => { delivered += n }
      })
    } catch (err) {
      this.p.reads.drop(read)
      // The owner has no download of the blob (it has just started one, or its own went no further: a
      // cache too small for the blob): it is left out until a look shows it downloading, and the range
      // goes to the unit's owner among the others, the same on every member (the upstream, if this node).
      if (err instanceof WireError && err.code === 'NOT_FOUND' && signal?.aborted !== true) {
        // An owner that had the size was downloading the blob: most likely it is committing it now (every
        // member's last ranges would otherwise go to the upstream at once). Read it as a holder then.
        if (this.p.view.answer(owner)?.size !== undefined && await this.p.view.becameHolder(owner, signal)) return await this.fromHolders(range, { signal })
        this.p.view.forget(owner)
        return GONE
      }
      if (signal?.aborted !== true && (read.cut.signal.aborted || await this.p.liveness.isGone(owner))) return GONE
      this.p.liveness.failed(unit, owner)
      // A loaded owner may answer late or drop a connection: that unit goes upstream, but the owner
      // keeps the rest of its share (a member that died leaves the membership). Dropping it at the first
      // timeout sent every member's whole share of a busy owner upstream (1.2–1.4 × the blob).
      if (isSlowPeer(err) && signal?.aborted !== true) {
        this.p.c.logger.debug({ peer: owner, err: (err as Error).message, unit, start: range.start, end: end + 1 }, 'peer read failed; this unit goes upstream')
        return null
      }
      this.p.view.peerFailed(owner, err, signal)
      return null
    }
    this.p.view.succeeded(owner)
    if (verifiedOnly && res.unverified === true) {
      // Its download could not vouch for these bytes (no tags on them): the caller cannot wait for the digest.
      this.p.reads.drop(read)
      discardBody(res.body)
      return null
    }
    this.p.blame.downloader(owner)
    this.p.reads.answered(read, res)
    // What it sent unverified, in order from the range's start: judged if the blob fails its digest.
    if (res.unverified === true) res.body.once('close', () => { if (delivered > 0) this.p.blame.delivered(owner, range.start, range.start + delivered) })
    res.body.once('error', (err: unknown) => {
      if (!(err instanceof PeerLeftError)) this.p.liveness.failed(unit, owner)
      // A frame whose tag did not match: the owner has no finished copy to re-check, only a ban.
      if (err instanceof PeerCorruptError) this.p.blame.ban(owner, null, err.piece)
    })
    const along = { ...res, readAlong: true }
    return this.p.responses() === 0 ? withMeta(along, ticket) : this.p.version.stamp(along, ticket)
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
        return await this.p.c.peers.ticket(peer, this.p.name, { signal })
      } catch (err) {
        const starting = this.p.view.answer(peer)?.size === undefined
        if (!(err instanceof WireError && err.code === 'NOT_FOUND') || !starting || Date.now() > until) throw err
        await sleep(50, undefined, { signal })
      }
    }
  }
}
