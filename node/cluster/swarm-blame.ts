import type { Logger } from '../log.ts'
import type { SuspectRange } from '../fetch/upstream-source.ts'
import type { Bans } from './bans.ts'
import type { PeerClient } from './peer-client.ts'

export interface SwarmBlameComponents {
  bans: Bans
  peers: Pick<PeerClient, 'forget'>
  logger: Logger
  /** Tells a holder its bytes of the blob `digest` (sha256 hex) failed here (it re-checks its copy). */
  reportCorrupt?: (peer: string, digest: string) => void
  onBan?: (peer: string) => void
}

/**
 * Who sent a download which bytes, and what becomes of them when bytes turn out wrong: a wrong unit bans
 * its sender at once; a blob that fails its whole digest bans the holders and the downloaders that
 * vouched for theirs, and leaves the senders of unvouched bytes (an open cluster) to be judged.
 */
export class SwarmBlame {
  private readonly c: SwarmBlameComponents
  private readonly name: string
  /** Leaves a peer out of the rest of the download. */
  private readonly exclude: (peer: string) => void
  /** Peers whose bytes went into this download: a holder with the sha256 of its copy, a downloader with null. */
  private readonly contributors = new Map<string, string | null>()
  /** Bytes peers sent unverified (open cluster, downloads in flight), by sender. */
  private readonly deliveries: SuspectRange[] = []

  constructor (components: SwarmBlameComponents, name: string, exclude: (peer: string) => void) {
    this.c = components
    this.name = name
    this.exclude = exclude
  }

  /** A holder's copy (sha256 `digest`) is read. */
  holder (peer: string, digest: string): void {
    this.contributors.set(peer, digest)
  }

  /** A downloader's bytes in flight are read. */
  downloader (peer: string): void {
    if (!this.contributors.has(peer)) this.contributors.set(peer, null)
  }

  /** `peer` sent [start, end) nobody vouched for. */
  delivered (peer: string, start: number, end: number): void {
    this.deliveries.push({ peer, start, end })
  }

  /**
   * The whole blob failed its digest. Peers that sent bytes nobody vouched for (an open cluster's reads of
   * downloads in flight) are left out of the download and returned as suspects: the download fetches
   * their ranges again and convicts those whose bytes differed, so one lying member does not get every
   * honest one banned. Every other peer that sent bytes is banned now, holders too (a copy whose piece
   * list was made from the same wrong bytes passes every unit check), and a holder is told to check its copy.
   */
  onDigestMismatch (): SuspectRange[] {
    const suspects = this.deliveries.splice(0)
    const suspected = new Set(suspects.map(s => s.peer))
    for (const [peer, holding] of this.contributors) {
      this.exclude(peer)
      if (!suspected.has(peer)) this.ban(peer, holding)
    }
    this.contributors.clear()
    return suspects
  }

  convict (peers: ReadonlySet<string>): void {
    for (const peer of peers) this.ban(peer, null)
  }

  /**
   * Bans a peer that sent wrong bytes (`piece`: the unit that failed; none when the whole blob failed its
   * digest). `holding`: the sha256 of its complete copy, which it is told to check again.
   */
  ban (peer: string, holding: string | null, piece?: number): void {
    this.exclude(peer)
    // Reads in flight from one peer fail together: one offence, one ban (a second doubled it).
    if (this.c.bans.isBanned(peer)) return
    if (holding !== null) this.c.reportCorrupt?.(peer, holding)
    const ms = this.c.bans.ban(peer)
    this.c.peers.forget(peer)
    this.c.onBan?.(peer)
    if (piece === undefined) this.c.logger.warn({ peer, digest: this.name, banMs: ms }, 'blob failed its digest after a peer sent bytes of it; peer banned')
    else this.c.logger.warn({ peer, digest: holding ?? this.name, piece, banMs: ms }, 'peer sent corrupt bytes; banned')
  }
}
