/**
 * Peers that sent bytes that failed verification are not asked again for a while. The ban doubles for
 * each repeat offence (5 minutes, 10, 20, … capped at a day).
 */
export class Bans {
  private readonly until = new Map<string, number>()
  private readonly offences = new Map<string, number>()
  private readonly baseMs: number

  constructor (init: { baseMs?: number } = {}) {
    this.baseMs = init.baseMs ?? 5 * 60_000
  }

  ban (peer: string, now: number = Date.now()): number {
    const n = (this.offences.get(peer) ?? 0) + 1
    this.offences.set(peer, n)
    const ms = Math.min(24 * 3600_000, this.baseMs * 2 ** (n - 1))
    this.until.set(peer, now + ms)
    return ms
  }

  isBanned (peer: string, now: number = Date.now()): boolean {
    const t = this.until.get(peer)
    if (t === undefined) return false
    if (t > now) return true
    this.until.delete(peer)
    return false
  }

  list (now: number = Date.now()): Array<{ peer: string, until: number }> {
    return [...this.until].filter(([, t]) => t > now).map(([peer, t]) => ({ peer, until: t }))
  }
}
