import { setTimeout as sleep } from 'node:timers/promises'
import { UpstreamTimeoutError } from '../errors.ts'
import type { Limiter } from './limiter.ts'
import type { Assignment, Scheduler } from './pieces.ts'
import type { SourceResponse } from './upstream-source.ts'
import type { WantedOffsets } from './waiters.ts'

/** A connection with no byte for this long gets its range duplicated onto a free connection. */
export const STALL_MS = 2_000

/** Urgent or stall connections beyond the target at once. */
const EXTRA_CONNECTIONS = 2

/** What the pool needs of its download. */
export interface ConnectionPoolHost {
  limiter: Limiter
  signal: AbortSignal
  scheduler: () => Scheduler | null
  /** Ranges the download wants in flight now (the source may change its mind as peers come and go). */
  target: () => number
  /** Offsets readers are waiting for (their ranges come first). */
  wanted: () => WantedOffsets
  running: () => boolean
  settled: () => boolean
  /** Fetches one assignment to its end (`first`: the response already asked for it). */
  fetch: (a: Assignment, first?: SourceResponse) => Promise<void>
  fail: (err: unknown) => void
  /** Called when the last connection ended. */
  drained: () => void
  /** A range of its own (not a peer's download read along) sent nothing for STALL_MS; the watchdog duplicates either. */
  stalled?: () => void
  /** When the last byte arrived, from any source (ms; 0: none yet). */
  lastByteAt: () => number
  /** Ranges in flight with no byte arriving on any for this long fail the download (0: never). */
  quietLimitMs: number
}

/**
 * A download's connections: each takes the scheduler's next range (a reader's first, idle ones steal,
 * the tail is duplicated) until none is left. Keeps `target()` of them, adds a short-lived one for a
 * range a reader waits on that no connection will reach soon or one that stalled, and a watchdog that
 * notices stalls (not a reader poll).
 */
export class ConnectionPool {
  /** Connections open or waiting for a slot. */
  count = 0
  private extras = 0
  private watchdog: NodeJS.Timeout | null = null
  /** How long ranges have been in flight with no byte arriving, as the watchdog's ticks add it up. */
  private quietMs = 0
  private lastTickAt = 0
  private readonly host: ConnectionPoolHost

  constructor (host: ConnectionPoolHost) {
    this.host = host
  }

  /** The first connection, with its limiter slot and, unless it was not usable, the response that learned the blob. */
  startWith (release: () => void, first?: { a: Assignment, response: SourceResponse }): void {
    this.count++
    this.run(release, first, false, true).catch(() => {})
  }

  /** Opens connections up to the target (and starts the stall watchdog). */
  fill (): void {
    if (this.host.scheduler() === null) return
    if (this.watchdog === null) {
      this.lastTickAt = Date.now()
      this.quietMs = 0
      this.watchdog = setInterval(() => {
        const stalled = this.host.running() ? this.host.scheduler()?.stalled(Date.now(), STALL_MS) : undefined
        if (stalled?.any === true) {
          if (stalled.own) this.host.stalled?.()
          this.extra()
        }
        this.checkQuiet(Date.now())
        // The source may have found more to share the work with since (peers downloading it too).
        if (this.host.running()) this.fill()
      }, STALL_MS / 2)
      this.watchdog.unref()
    }
    const target = this.host.target()
    while (this.count < target) {
      this.count++
      this.host.limiter.acquire({ signal: this.host.signal }).then(release => this.run(release), () => { this.count-- })
        .catch(() => {})
    }
  }

  /** A reader waits for `offset`: if no connection will reach it soon, one more connection fetches it first. */
  urgent (offset: number, patient = false): void {
    const scheduler = this.host.scheduler()
    if (!this.host.running() || scheduler === null) return
    if ((patient ? scheduler.urgentOffset([], [offset]) : scheduler.urgentOffset([offset])) === null) return
    this.extra()
  }

  stop (): void {
    if (this.watchdog !== null) clearInterval(this.watchdog)
    this.watchdog = null
  }

  /**
   * Fails the download once ranges were in flight for quietLimitMs and not one byte came: every
   * connection and its retries hung (a proxy that holds bodies), which would otherwise keep the client
   * waiting through each connection's retries (minutes) for nothing. Time spent waiting for a
   * connection slot, or with nothing in flight, does not count; nor does a tick that came late: this
   * process was busy (2000 clients reading one download), and the bytes that arrived meanwhile are
   * handled only after this timer.
   */
  private checkQuiet (now: number): void {
    const elapsed = now - this.lastTickAt
    this.lastTickAt = now
    const limit = this.host.quietLimitMs
    if (limit <= 0 || !this.host.running() || (this.host.scheduler()?.activeCount ?? 0) === 0 || this.host.lastByteAt() >= now - elapsed) {
      this.quietMs = 0
      return
    }
    this.quietMs += Math.min(elapsed, STALL_MS / 2)
    if (this.quietMs < limit) return
    this.host.fail(new UpstreamTimeoutError(`No byte arrived on any connection for ${Math.round(limit / 100) / 10} s (twice server.read_timeout_s)`))
  }

  /** A short-lived connection beyond the target for one urgent or stalled range. */
  private extra (): void {
    if (this.extras >= EXTRA_CONNECTIONS) return
    this.extras++
    this.count++
    this.host.limiter.acquire({ signal: this.host.signal, urgent: true }).then(release => this.run(release, undefined, true), () => {
      this.extras--
      this.count--
    }).catch(() => {})
  }

  /**
   * One connection's loop. `own`: it holds the download's own slot (the first connection); the others
   * hold connection slots, and give theirs up between ranges while other connections wait for one, so
   * downloads started later get their share instead of waiting for these to end.
   */
  private async run (release: () => void, first?: { a: Assignment, response: SourceResponse }, extra = false, own = false): Promise<void> {
    let holding = true
    try {
      if (first !== undefined) {
        first.a.lastProgress = Date.now()
        await this.host.fetch(first.a, first.response)
        this.host.scheduler()?.release(first.a)
      }
      let scheduler = this.host.scheduler()
      while (!this.host.settled() && scheduler !== null) {
        const wanted = this.host.wanted()
        const now = Date.now()
        const a = scheduler.next(wanted.urgent, now, STALL_MS, wanted.patient)
        if (a === null) {
          // A range too young to judge may turn out worth sharing: ask again once it has shown its rate.
          const at = extra ? null : scheduler.stealableAt(now)
          if (at === null) break
          await sleep(Math.max(1, at - now))
          scheduler = this.host.scheduler()
          continue
        }
        a.lastProgress = Date.now()
        try {
          await this.host.fetch(a)
        } finally {
          scheduler.release(a)
        }
        // Fewer ranges wanted now (a LAN holder turned up): this connection retires. Extras do not count:
        // they leave after their one range, and a connection retiring for them left nobody to finish.
        if (extra || this.count - this.extras > this.host.target()) break
        if (!own && this.host.limiter.waiting > 0) {
          release()
          holding = false
          const again = await this.host.limiter.acquire({ signal: this.host.signal }).catch(() => null)
          if (again === null) break
          release = again
          holding = true
        }
        scheduler = this.host.scheduler()
      }
    } catch (err) {
      this.host.fail(err)
    } finally {
      if (holding) release()
      this.count--
      if (extra) this.extras--
      if (this.count === 0) this.host.drained()
    }
  }
}
