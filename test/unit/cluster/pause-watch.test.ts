import { afterEach, describe, expect, it, vi } from 'vitest'
import { PauseWatch } from '../../../node/cluster/pause-watch.ts'

describe('pause watch', () => {
  afterEach(() => { vi.useRealTimers(); vi.restoreAllMocks() })

  it('tells when the process came back, once its timers fire seconds late', () => {
    let now = 1000
    vi.spyOn(performance, 'now').mockImplementation(() => now)
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const watch = new PauseWatch()
    watch.start()
    for (let i = 0; i < 8; i++) { now += 250; vi.advanceTimersByTime(250) }
    expect(watch.returnedAt()).toBe(0)
    // Stopped for 5 s: in the first moments back, before the late tick ran, it already says "now"…
    now += 5000
    expect(Math.abs(watch.returnedAt() - Date.now())).toBeLessThan(100)
    // …and after it, the moment the late tick ran.
    vi.advanceTimersByTime(250)
    now += 2000
    vi.advanceTimersByTime(2000)
    expect(Math.abs(Date.now() - watch.returnedAt() - 2000)).toBeLessThan(100)
    watch.stop()
  })

  it('says nothing while stopped itself', () => {
    let now = 0
    vi.spyOn(performance, 'now').mockImplementation(() => now)
    const watch = new PauseWatch()
    now += 10_000
    expect(watch.returnedAt()).toBe(0)
  })
})
