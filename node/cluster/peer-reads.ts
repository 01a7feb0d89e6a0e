import type { SourceResponse } from '../fetch/upstream-source.ts'

/** A range being read from a peer (its download in flight, or its complete copy). */
export interface PeerRead {
  peer: string
  start: number
  end: number
  /** When its last bytes came (a download in flight there: any byte; a holder: a verified unit). */
  lastByteAt: number
  /** Cuts the request before its response came (the peer is gone). */
  cut: AbortController
  body: SourceResponse['body'] | null
}

/** Why a read from a member that left the cluster is cut (its range is asked again, of another source). */
export class PeerLeftError extends Error {
  readonly code = 'ERR_PEER_LEFT'
  constructor (peer: string) {
    super(`peer ${peer} left the cluster`)
    this.name = 'PeerLeftError'
  }
}

/**
 * A download's reads from peers, from the request until the body closes: what tells a silent (frozen)
 * peer, and what is cut when a peer is found gone.
 */
export class PeerReads {
  private readonly reads = new Set<PeerRead>()

  /** A read from `peer` about to be asked, with the signal that cuts its request. */
  start (peer: string, start: number, end: number, signal?: AbortSignal): { read: PeerRead, asked: AbortSignal } {
    const read: PeerRead = { peer, start, end, lastByteAt: Date.now(), cut: new AbortController(), body: null }
    this.reads.add(read)
    return { read, asked: signal === undefined ? read.cut.signal : AbortSignal.any([signal, read.cut.signal]) }
  }

  /** The read's response came: tracked until its body closes. */
  answered (read: PeerRead, res: SourceResponse): void {
    read.body = res.body
    res.body.once('close', () => { this.reads.delete(read) })
  }

  /** The read ended before a response (failed, or not asked after all). */
  drop (read: PeerRead): void {
    this.reads.delete(read)
  }

  /** Reads from `peer` under way (asked, or their bodies still open). */
  inFlight (peer: string): number {
    let n = 0
    for (const r of this.reads) if (r.peer === peer) n++
    return n
  }

  /** Ends every read from `peer`. */
  cut (peer: string): void {
    for (const r of this.reads) {
      if (r.peer !== peer) continue
      // Not the request's signal once the body is there: a body ended by an abort fails the whole
      // download (the download itself was stopped); one ended by PeerLeftError is asked again.
      if (r.body === null) r.cut.abort()
      else r.body.destroy(new PeerLeftError(peer))
    }
  }

  /**
   * Whether a read from `peer` went quiet for `ms`. (Not "every read": new ranges keep being asked of a
   * frozen owner, and their fresh reads hid the old silent ones.)
   */
  quiet (peer: string, ms: number): boolean {
    const since = Date.now() - ms
    for (const r of this.reads) if (r.peer === peer && r.lastByteAt < since) return true
    return false
  }

  /** The peer of a read overlapping [start, end) that went quiet for `ms`, among those `counts` accepts. */
  stalled (start: number, end: number, ms: number, counts: (peer: string) => boolean): string | null {
    const since = Date.now() - ms
    for (const r of this.reads) {
      if (r.start < end && start < r.end && r.lastByteAt < since && counts(r.peer)) return r.peer
    }
    return null
  }
}
