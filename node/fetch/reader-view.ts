import { ByteRanges } from './byte-ranges.ts'
import { Waiters } from './waiters.ts'

/** What the view needs of its download. */
export interface ReaderViewHost {
  written: ByteRanges
  verified: () => boolean
  settled: () => boolean
  size: () => number | null
  /** A reader waits at `offset`: the download may fetch it first (`patient`: see Waiters.wait). */
  urgent: (offset: number, patient: boolean) => void
}

/**
 * What readers of a download in progress may take and when they wake. A client gets bytes as they
 * land, except the final byte and bytes nobody vouched for, which wait for the blob's digest; a peer
 * reading along gets everything on disk (it verifies the blob itself). Readers sleep on `waiters`
 * (no polling).
 */
export class ReaderView {
  /** Bytes written from sources that could not vouch for them: readers get them once the blob verified. */
  readonly unverified = new ByteRanges()
  readonly waiters = new Waiters()
  private readonly host: ReaderViewHost

  constructor (host: ReaderViewHost) {
    this.host = host
  }

  /** Bytes from `pos` a reader may take now: on disk, and not the final byte before verification. */
  readableEnd (pos: number, end: number): number {
    let avail = Math.min(end, this.host.written.contiguousEnd(pos))
    if (!this.host.verified()) {
      const size = this.host.size()
      const cap = size === null ? avail - 1 : size - 1
      avail = Math.min(avail, cap, this.unverified.firstAtOrAfter(pos))
    }
    return avail
  }

  /**
   * Bytes from `pos` a peer may take now: everything on disk, the final byte and unverified bytes
   * included (a peer verifies the blob itself and holds back what it cannot vouch for).
   */
  peerReadableEnd (pos: number, end: number): number {
    return Math.min(end, this.host.written.contiguousEnd(pos))
  }

  /** Resolves when more bytes at `offset` may be readable, or the download settled. */
  waitFor (pos: number, signal?: AbortSignal, options: { peer?: boolean } = {}): Promise<void> {
    // Wait on the first byte not yet on disk (a held-back final byte waits for verification, and so
    // does an unverified byte for a client: only the end of the download wakes those). A peer reading
    // along takes unverified bytes, and its wait steers the scheduling like a client's, patiently.
    const held = options.peer !== true && !this.host.verified() && this.unverified.firstAtOrAfter(pos) === pos
    const offset = held ? Number.POSITIVE_INFINITY : this.host.written.contiguousEnd(pos)
    if (this.host.settled()) return Promise.resolve()
    const peer = options.peer === true
    const woken = this.waiters.wait(offset, signal, peer)
    if (!held && signal?.aborted !== true) this.host.urgent(offset, peer)
    return woken
  }
}
