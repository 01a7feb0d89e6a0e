import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../log.ts'
import type { BlobEntry } from './index-db.ts'

export interface ScrubHost {
  /** The committed blobs now. */
  blobs: () => Array<[string, BlobEntry]>
  /** A blob's entry now (undefined: evicted or dropped meanwhile). */
  entry: (digest: string) => BlobEntry | undefined
  /** Downloads are under way: they need the disk and the CPU more; the scrub waits. */
  busy: () => boolean
  /** Hashes the blob's file (at most `bytesPerSecond`), dropping it unless it matches; false when dropped. */
  verify: (digest: string, entry: BlobEntry, options: { signal: AbortSignal, bytesPerSecond: number }) => Promise<boolean>
}

export interface ScrubInit {
  /** A blob is hashed again once its last check is this old. */
  everyMs: number
  /** Read rate of a check (default 32 MiB/s: a background job, not a client's wait). */
  bytesPerSecond?: number
  /** How often it looks for blobs due (default 10 minutes), and waits while downloads run. */
  lookEveryMs?: number
}

/**
 * Hashes every blob again, slowly, every `everyMs`: a disk that returns bad bytes under an unchanged
 * size, mtime and inode is seen by no stat check, and would serve them to every client until a peer
 * or a client's own digest check noticed. Oldest check first; never while downloads are under way.
 */
export class BlobScrub {
  private readonly host: ScrubHost
  private readonly log: Logger
  private readonly everyMs: number
  private readonly bytesPerSecond: number
  private readonly lookEveryMs: number
  private stopped = new AbortController()
  private running: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  /** Blobs checked and found corrupt since the start (for the logs and the tests). */
  readonly counts = { checked: 0, dropped: 0 }

  constructor (host: ScrubHost, log: Logger, init: ScrubInit) {
    this.host = host
    this.log = log
    this.everyMs = init.everyMs
    this.bytesPerSecond = init.bytesPerSecond ?? 32 << 20
    this.lookEveryMs = init.lookEveryMs ?? 600_000
  }

  start (): void {
    if (this.timer !== null) return
    this.stopped = new AbortController()
    this.timer = setInterval(() => { this.running ??= this.pass().finally(() => { this.running = null }) }, this.lookEveryMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.stopped.abort()
    await this.running
  }

  /** Checks the blobs due, oldest check first, until none is due or the store stops. */
  private async pass (): Promise<void> {
    const signal = this.stopped.signal
    const due = this.host.blobs()
      .map(([digest, entry]) => ({ digest, entry, at: entry.verifiedAt ?? entry.mtimeMs }))
      .filter(b => b.at + this.everyMs <= Date.now())
      .sort((a, b) => a.at - b.at)
    for (const { digest } of due) {
      try {
        while (this.host.busy()) await sleep(this.lookEveryMs / 10, undefined, { signal })
        const entry = this.host.entry(digest)
        if (entry === undefined) continue
        this.counts.checked++
        if (!await this.host.verify(digest, entry, { signal, bytesPerSecond: this.bytesPerSecond })) {
          this.counts.dropped++
          this.log.warn({ digest }, 'a cached blob no longer matched its digest on disk; it was dropped')
        }
      } catch (err) {
        if (signal.aborted) return
        // Evicted meanwhile, or unreadable: the next client's check decides.
        this.log.debug({ digest, err }, 'background check of a blob failed')
      }
    }
  }
}
