import { afterEach, describe, expect, it, vi } from 'vitest'
import { PauseWatch } from '../../../node/cluster/pause-watch.ts'

describe('pause watch', () => {
  afterEach(() => { vi.useRealTimers(); vi.restoreAllMocks() })

  it('tells that the process was away once its timers fire seconds late, for a while after', () => {
    let now = 1000
    vi.spyOn(performance, 'now').mockImplementation(() => now)
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const watch = new PauseWatch()
    watch.start()
    for (let i = 0; i < 8; i++) { now += 250; vi.advanceTimersByTime(250) }
    expect(watch.backWithin(3000)).toBe(false)
    // Stopped for 5 s: in the first moments back, before the late tick ran, it already says so…
    now += 5000
    expect(watch.backWithin(3000)).toBe(true)
    // …and after it, for the window asked about.
    vi.advanceTimersByTime(250)
    now += 2000
    vi.advanceTimersByTime(2000)
    expect(watch.backWithin(3000)).toBe(true)
    now += 1500
    vi.advanceTimersByTime(1500)
    expect(watch.backWithin(3000)).toBe(false)
    watch.stop()
  })

  it('says nothing while stopped itself', () => {
    let now = 0
    vi.spyOn(performance, 'now').mockImplementation(() => now)
    const watch = new PauseWatch()
    now += 10_000
    expect(watch.backWithin(3000)).toBe(false)
  })
})
