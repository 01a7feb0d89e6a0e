/**
 * Below this rate the members holding a blob are slow for a download (a laptop on Wi-Fi, a busy
 * machine): the upstream takes part too. A wired LAN brings 100 MB/s and more.
 */
export const SLOW_HOLDERS_BPS = 16 << 20
/** The window the holders' rate is taken over, and how often it is taken again. */
export const PACE_WINDOW_MS = 3000

/**
 * How fast the members holding a blob serve one download, judged over a window in which they were
 * asked all along and are busy at its end (a download nearly done asks little and is not slow for it).
 */
export class HolderPace {
  private firstAskAt = 0
  private readonly units: Array<{ at: number, bytes: number }> = []
  private rate: number | null = null
  private judgedAt = 0

  /** A read was asked of a holder. */
  asked (now = Date.now()): void {
    if (this.firstAskAt === 0) this.firstAskAt = now
  }

  /** Verified bytes came from a holder. */
  delivered (bytes: number, now = Date.now()): void {
    this.units.push({ at: now, bytes })
    this.prune(now)
  }

  /** The holders' rate when last judged slow; null while they are not (or not judged yet). */
  get slowRate (): number | null {
    return this.rate !== null && this.rate < SLOW_HOLDERS_BPS ? this.rate : null
  }

  /**
   * Judges the holders again once a window passed since they were first asked (and since the last
   * judgement), if they are busy now (`busy`: reads under way at them fill what they are given).
   * Whether they are slow. `returnedAt`: when this node last came back from a pause (0: never): a
   * window it was away in says nothing of the holders (their bytes waited for it), and judged them
   * slow at its return, sending the rest of a blob they hold to the upstream.
   */
  judge (busy: boolean, now = Date.now(), returnedAt = 0): boolean {
    if (now - returnedAt < PACE_WINDOW_MS) return this.slowRate !== null
    if (busy && this.firstAskAt !== 0 && now - this.firstAskAt >= PACE_WINDOW_MS && now - this.judgedAt >= PACE_WINDOW_MS) {
      this.prune(now)
      this.rate = this.units.reduce((n, u) => n + u.bytes, 0) / (PACE_WINDOW_MS / 1000)
      this.judgedAt = now
    }
    return this.slowRate !== null
  }

  private prune (now: number): void {
    while (this.units.length > 0 && (this.units[0] as { at: number }).at < now - PACE_WINDOW_MS) this.units.shift()
  }
}
