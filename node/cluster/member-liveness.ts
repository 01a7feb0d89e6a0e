import type { Logger } from '../log.ts'
import type { PeerReads } from './peer-reads.ts'
import type { SwarmView } from './swarm-view.ts'

/** A member's reads quiet for this long: the next range for it first checks it is still there. */
const QUIET_MS = 2000
/** How long a peer found gone is left out of the download before it is considered again. */
const GONE_MS = 10_000

/**
 * Which members are still there for one download. One found gone (it left the cluster, or missed a
 * ping: frozen or dead) has its reads cut and is left out for a while; a unit whose read failed on a
 * member still there goes upstream, and once that member is gone the unit has a new owner instead, the
 * same for every member.
 */
export class MemberLiveness {
  private readonly view: SwarmView
  private readonly reads: PeerReads
  private readonly log: Logger
  private readonly name: string
  /** Units whose read failed here, and the member it failed on. */
  private readonly failedUnits = new Map<number, string>()

  constructor (view: SwarmView, reads: PeerReads, log: Logger, name: string) {
    this.view = view
    this.reads = reads
    this.log = log
    this.name = name
  }

  /**
   * A member left the cluster (its process died or froze, and its connection was dropped): the reads
   * from it are cut at once rather than at their read timeout, and their ranges are asked again, of the
   * units' new owners among the members still downloading (every member computes the same ones), not
   * each of the upstream.
   */
  memberLeft (peer: string): void {
    // Not suspended: it is no member now, and usable again as soon as it is one.
    this.view.lost()
    this.reads.cut(peer)
  }

  /** A member (re)joined: one found gone may be back from a freeze, or this node from its own. */
  memberJoined (peer: string): void {
    this.view.unsuspend(peer)
  }

  /** Whether `peer` stopped answering (a ping failed): it leaves the download and its reads are cut. */
  async isGone (peer: string): Promise<boolean> {
    if (!this.view.usable(peer)) return true
    if (await this.view.alive(peer)) return false
    this.log.debug({ name: this.name, peer }, 'swarm: a downloader stopped answering; its units get other owners')
    // For a while, not for good: a frozen process may come back (and it sees every member leave and
    // return), and what they hold is then worth reading again.
    this.view.suspend(peer, GONE_MS)
    this.reads.cut(peer)
    return true
  }

  /**
   * Whether a member whose reads went quiet is gone (a frozen or dead peer keeps its reads silent until
   * the membership drops it, seconds): a ping tells that apart from one still fetching those bytes.
   */
  async quietAndGone (peer: string): Promise<boolean> {
    return this.reads.quiet(peer, QUIET_MS) && await this.isGone(peer)
  }

  /** A read of `unit` failed on `peer`. */
  failed (unit: number, peer: string): void {
    this.failedUnits.set(unit, peer)
  }

  /** The member a read of `unit` failed on, if any. */
  failedOn (unit: number): string | undefined {
    return this.failedUnits.get(unit)
  }

  /**
   * Whether a unit goes upstream because a read of it failed here: only while the peer it failed on is
   * still there. Once it left, the unit has a new owner, the same for every member.
   */
  async failedHere (unit: number): Promise<boolean> {
    const peer = this.failedUnits.get(unit)
    if (peer === undefined) return false
    if (!(await this.isGone(peer))) return true
    this.failedUnits.delete(unit)
    return false
  }
}
