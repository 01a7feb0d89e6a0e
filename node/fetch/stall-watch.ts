import { UpstreamTimeoutError } from '../errors.ts'

/** How long a pass-through request may send nothing before it is asked again, at first. */
export const FIRST_STALL_MS = 5_000

/**
 * When a pass-through's requests that send nothing are given up and asked again, well before the read
 * timeout: one hung request (a connection a proxy dropped without a word) held the client for the whole
 * read timeout. An upstream that is only slow to answer is learnt: later limits leave twice the longest
 * wait that was followed by bytes, and a range whose requests keep stalling waits twice as long each
 * time, up to the read timeout (`capMs`). Shared by all the ranges of one pass-through.
 */
export class StallWatch {
  private readonly capMs: number
  private slowestMs = 0

  /** `answeredInMs`: how long the file's first response took (a wait the upstream is known for). */
  constructor (capMs: number, answeredInMs = 0) {
    this.capMs = capMs
    this.slowestMs = answeredInMs
  }

  /** How long a request may send nothing after `stalls` requests of its range in a row were given up. */
  limitMs (stalls: number): number {
    return Math.min(this.capMs, Math.max(FIRST_STALL_MS, 2 * this.slowestMs) * 2 ** stalls)
  }

  /** Whether a limit of `ms` is the read timeout itself (a stall then counts as a timeout would). */
  atCap (ms: number): boolean {
    return ms >= this.capMs
  }

  /** Watches one request: its signal aborts when nothing came for the limit. */
  attempt (outer: AbortSignal, stalls: number): StallAttempt {
    return new StallAttempt(this, outer, this.limitMs(stalls))
  }

  /** A wait before bytes that did come. */
  waited (ms: number): void {
    if (ms > this.slowestMs) this.slowestMs = ms
  }
}

/** One request under a StallWatch: `touch` on every sign of life, `done` when it ends. */
export class StallAttempt {
  readonly limitMs: number
  readonly signal: AbortSignal
  /** The request was given up: it sent nothing for `limitMs`. */
  stalled = false
  private readonly watch: StallWatch
  private readonly ac = new AbortController()
  private readonly outer: AbortSignal
  private last = performance.now()
  /** The reader holds the bytes back (backpressure): no stall meanwhile. */
  private held = false
  private timer: NodeJS.Timeout | null = null
  private readonly onOuterAbort = (): void => { this.ac.abort(this.outer.reason) }

  constructor (watch: StallWatch, outer: AbortSignal, limitMs: number) {
    this.watch = watch
    this.outer = outer
    this.limitMs = limitMs
    this.signal = this.ac.signal
    if (outer.aborted) this.ac.abort(outer.reason)
    else outer.addEventListener('abort', this.onOuterAbort, { once: true })
    this.arm(limitMs)
  }

  /** Bytes (or an answer) came. */
  touch (): void {
    const now = performance.now()
    this.watch.waited(now - this.last)
    this.last = now
  }

  /** The reader stopped taking bytes (true) or takes them again (false). */
  hold (held: boolean): void {
    this.held = held
    if (!held) this.last = performance.now()
  }

  /** The error to report for a request that failed: a stall when it was given up for one. */
  failure (err: unknown): unknown {
    return this.stalled ? new UpstreamTimeoutError(`Upstream sent nothing for ${Math.round(this.limitMs / 1000)} s`, { cause: err, detail: { stalledMs: this.limitMs } }) : err
  }

  done (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.outer.removeEventListener('abort', this.onOuterAbort)
  }

  // One timer per request, re-armed for what is left rather than reset on every chunk.
  private arm (ms: number): void {
    this.timer = setTimeout(() => {
      const quiet = performance.now() - this.last
      if (this.held || quiet < this.limitMs) {
        this.arm(this.held ? this.limitMs : this.limitMs - quiet)
        return
      }
      this.timer = null
      this.stalled = true
      this.ac.abort(new UpstreamTimeoutError())
    }, Math.max(1, ms))
    this.timer.unref()
  }
}
