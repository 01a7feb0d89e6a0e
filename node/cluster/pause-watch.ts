/** A tick this late means the process was away. */
const AWAY_MS = 2000
const TICK_MS = 250

/**
 * Notices that this process was away: stopped (SIGSTOP, a suspended laptop or VM) or starved, its
 * timers firing seconds late. Members dropped its connections meanwhile and take it back within a
 * second or two of its return: until then what they would serve is better waited for than fetched from
 * the upstream by every connection at once.
 */
export class PauseWatch {
  private timer: NodeJS.Timeout | null = null
  private lastTick = 0
  private backAt = 0

  start (): void {
    if (this.timer !== null) return
    this.lastTick = performance.now()
    this.timer = setInterval(() => { this.tick() }, TICK_MS)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /**
   * When (Date.now()) this process last came back from a pause; now in the first moments after it,
   * before the late tick ran (the sockets closed meanwhile may be handled first); 0 when it never paused.
   */
  returnedAt (): number {
    const now = performance.now()
    // Noticed here before the tick: every caller from now on gets the same moment.
    if (this.timer !== null) this.notice(now)
    return this.backAt === 0 ? 0 : Date.now() - (now - this.backAt)
  }

  private tick (): void {
    this.notice(performance.now())
  }

  private notice (now: number): void {
    if (now - this.lastTick > AWAY_MS + TICK_MS) this.backAt = now
    this.lastTick = now
  }
}
