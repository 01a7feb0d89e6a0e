import { isNoAnswer } from '../errors.ts'
import type { Logger } from '../log.ts'

export interface AwayOriginsInit {
  /** How long an origin that failed to answer stays away unless it answers sooner. Default 30 s. */
  awayMs?: number
}

/**
 * Upstream origins that just failed to answer (could not be reached, or timed out). A caller holding a
 * copy of what it asks for serves that copy at once while the origin is away, instead of waiting its
 * grace time again on every request (an install while the office's line is down would wait on every
 * page); callers still ask the origin, and its first answer ends the away time.
 */
export class AwayOrigins {
  private readonly awayMs: number
  private readonly log: Logger
  private readonly until = new Map<string, number>()
  /** Origin → when it last answered: a failure of an exchange asked before that says nothing new. */
  private readonly answeredAt = new Map<string, number>()

  constructor (components: { logger: Logger }, init: AwayOriginsInit = {}) {
    this.awayMs = init.awayMs ?? 30_000
    this.log = components.logger
  }

  isAway (origin: string): boolean {
    const until = this.until.get(origin)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.until.delete(origin)
    return false
  }

  /** The origins away now, each with when that ends unless it answers sooner. */
  list (): Array<{ origin: string, until: string }> {
    return [...this.until.keys()].filter(o => this.isAway(o)).map(o => ({ origin: o, until: new Date(this.until.get(o) as number).toISOString() }))
  }

  answered (origin: string): void {
    this.answeredAt.set(origin, Date.now())
    if (this.until.delete(origin)) this.log.info({ origin }, 'upstream answers again')
  }

  /**
   * Notes a failed exchange, asked at `askedAt`: only not reaching the origin (refused, unresolved, timed
   * out) makes it away, and only when it has not answered since the exchange was asked.
   */
  failed (origin: string, err: unknown, askedAt = Date.now()): void {
    if (!isNoAnswer(err)) return
    this.noAnswer(origin, askedAt)
  }

  /**
   * Notes an exchange, asked at `askedAt`, that a caller stopped waiting for (its grace time passed, or
   * its deadline): for the clients, the origin did not answer.
   */
  noAnswer (origin: string, askedAt: number): void {
    if (askedAt < (this.answeredAt.get(origin) ?? -Infinity)) return
    if (!this.isAway(origin)) this.log.warn({ origin, for_s: this.awayMs / 1000 }, 'upstream away: copies at hand are served at once while it is asked again')
    this.until.set(origin, Date.now() + this.awayMs)
  }
}
