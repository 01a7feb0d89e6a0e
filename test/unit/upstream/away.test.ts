import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { UpstreamProtocolError, UpstreamTimeoutError, UpstreamUnreachableError } from '../../../node/errors.ts'
import { AwayOrigins } from '../../../node/upstream/away.ts'

describe('upstream origins away', () => {
  afterEach(() => { vi.useRealTimers() })

  it('is away after it could not be reached or timed out, until it answers or the time passes', () => {
    vi.useFakeTimers()
    const away = new AwayOrigins({ logger: pino({ level: 'silent' }) }, { awayMs: 30_000 })
    const a = 'https://a.example'
    away.failed(a, new UpstreamProtocolError('bad answer'))
    away.failed(a, new Error('not an upstream error'))
    expect(away.isAway(a)).toBe(false)
    away.failed(a, new UpstreamUnreachableError())
    expect(away.isAway(a)).toBe(true)
    expect(away.isAway('https://b.example')).toBe(false)
    away.answered(a)
    expect(away.isAway(a)).toBe(false)
    away.failed(a, new UpstreamTimeoutError())
    vi.advanceTimersByTime(29_000)
    expect(away.isAway(a)).toBe(true)
    vi.advanceTimersByTime(1_001)
    expect(away.isAway(a)).toBe(false)
    // An exchange asked before the origin's last answer says nothing new when it fails later.
    const askedAt = Date.now()
    vi.advanceTimersByTime(10)
    away.answered(a)
    away.failed(a, new UpstreamTimeoutError(), askedAt)
    expect(away.isAway(a)).toBe(false)
    away.failed(a, new UpstreamTimeoutError(), Date.now())
    expect(away.isAway(a)).toBe(true)
  })
})
