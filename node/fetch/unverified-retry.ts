import type { FileHandle } from 'node:fs/promises'
import type { Logger } from '../log.ts'
import type { DiskPieces } from './disk-pieces.ts'
import type { ProgressRecord } from './progress-record.ts'
import type { ReaderView } from './reader-view.ts'
import { SuspectTrial } from './suspect-ranges.ts'
import type { Source } from './upstream-source.ts'

export interface UnverifiedRetryHost {
  readonly key: string
  readonly log: Logger
  readonly source: Source
  readonly view: ReaderView
  readonly disk: DiskPieces
  readonly record: ProgressRecord
  /** The download's temp file, while it has one. */
  file: () => FileHandle | null
  rangeSupported: () => boolean
  running: () => boolean
  /** Stops the hashing: the old hasher must not judge the blob again. */
  stopHashing: () => void
  /** Hashes the file again from its first byte and sends connections for the missing ranges. */
  restart: (fh: FileHandle) => void
  fail: (err: unknown) => void
  retainFile: () => FileHandle
  releaseFile: () => void
}

/**
 * A blob that failed its digest with bytes peers could not vouch for (an open cluster). The source
 * names and bans those peers; their ranges are fetched again, from elsewhere, and the whole file is
 * hashed again. Clients were never given those bytes (they wait for the digest), so they go on as if
 * nothing happened. Once per download; once the blob matched, the senders whose bytes differed from
 * the ones fetched again are convicted.
 */
export class UnverifiedRetry {
  private readonly h: UnverifiedRetryHost
  /** Unverified ranges were fetched again (the piece list made in order is then not the blob's). */
  refetched = false
  /** The peers whose unverified bytes were fetched again, judged once the blob matched. */
  private trial: SuspectTrial | null = null

  constructor (host: UnverifiedRetryHost) {
    this.h = host
  }

  /**
   * The blob failed its digest: true when its unverified ranges are being fetched again; otherwise
   * (nothing to fetch again, or done once already) every sender of unvouched bytes is convicted.
   */
  mismatch (): boolean {
    const trial = new SuspectTrial(this.h.source.onDigestMismatch?.() ?? [])
    if (this.refetch(trial)) return true
    // Not told apart: every sender of bytes nobody vouched for (in the first pass, or this one).
    const peers = new Set([...trial.peers, ...(this.trial?.peers ?? [])])
    if (peers.size > 0) this.h.source.convict?.(peers)
    return false
  }

  /** The blob matched its digest: the senders of bytes fetched again are judged. */
  matched (): void {
    if (this.trial !== null) this.judge(this.trial)
  }

  private refetch (trial: SuspectTrial): boolean {
    const unverified = this.h.view.unverified.list()
    const fh = this.h.file()
    if (this.refetched || unverified.length === 0 || fh === null || this.h.disk.plan === null || !this.h.rangeSupported()) return false
    this.refetched = true
    this.trial = trial
    this.h.stopHashing()
    // What each peer sent is hashed before it is overwritten (see SuspectTrial).
    trial.record(fh).then(() => { if (this.h.running()) this.fetchAgain(fh, unverified) }, (err: unknown) => this.h.fail(err))
    return true
  }

  private fetchAgain (fh: FileHandle, unverified: Array<[number, number]>): void {
    this.h.disk.drop(unverified)
    this.h.view.unverified.clear()
    this.h.record.save()
    this.h.log.warn({ key: this.h.key, bytes: unverified.reduce((n, [s, e]) => n + e - s, 0) }, 'blob failed its digest with bytes peers sent; fetching those again')
    this.h.restart(fh)
  }

  /** Convicts the senders whose bytes were not the blob's (read from the file while it is held). */
  private judge (trial: SuspectTrial): void {
    const fh = this.h.retainFile()
    trial.guilty(fh).catch(() => trial.peers).then(peers => {
      if (peers.size > 0) this.h.source.convict?.(peers)
    }).finally(() => { this.h.releaseFile() }).catch(() => {})
  }
}
