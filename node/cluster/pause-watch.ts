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
   * Whether this process came back from a pause within the last `ms`. Also true in the first moments
   * after it, before the late tick ran: the sockets closed meanwhile may be handled first.
   */
  backWithin (ms: number): boolean {
    if (this.timer !== null && performance.now() - this.lastTick > AWAY_MS + TICK_MS) return true
    return this.backAt !== 0 && performance.now() - this.backAt < ms
  }

  private tick (): void {
    const now = performance.now()
    if (now - this.lastTick > AWAY_MS + TICK_MS) this.backAt = now
    this.lastTick = now
  }
}
