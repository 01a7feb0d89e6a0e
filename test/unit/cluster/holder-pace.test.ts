import { expect, it } from 'vitest'
import { HolderPace, PACE_WINDOW_MS, SLOW_HOLDERS_BPS } from '../../../node/cluster/holder-pace.ts'

const MiB = 1 << 20

it('judges the holders slow only after a whole window of asking, and only while they are busy', () => {
  const pace = new HolderPace()
  const t0 = 1_000_000
  pace.asked(t0)
  for (let t = 0; t < PACE_WINDOW_MS; t += 500) pace.delivered(MiB, t0 + t)
  // 6 MiB in 3 s: slow, but not judged before the window passed, nor while few reads are under way.
  expect(pace.judge(true, t0 + PACE_WINDOW_MS - 1)).toBe(false)
  expect(pace.judge(false, t0 + PACE_WINDOW_MS)).toBe(false)
  expect(pace.judge(true, t0 + PACE_WINDOW_MS)).toBe(true)
  expect(pace.slowRate).toBeCloseTo(6 * MiB / 3, -3)
})

const T0 = 1_000_000
/** Bytes that make the holders just fast enough over a window. */
const PER_WINDOW = SLOW_HOLDERS_BPS * PACE_WINDOW_MS / 1000

/** Holders that brought twice the slow rate over their first window, judged not slow at its end. */
function fastFirstWindow (): HolderPace {
  const pace = new HolderPace()
  pace.asked(T0)
  pace.delivered(2 * PER_WINDOW, T0 + PACE_WINDOW_MS - 10)
  expect(pace.judge(true, T0 + PACE_WINDOW_MS)).toBe(false)
  return pace
}

it('holders at LAN speed are not slow, and a judgement is taken again a window later', () => {
  const pace = fastFirstWindow()
  const t0 = T0
  // Then they stall: judged slow at the next window, not before.
  expect(pace.judge(true, t0 + PACE_WINDOW_MS + 1000)).toBe(false)
  expect(pace.judge(true, t0 + 2 * PACE_WINDOW_MS)).toBe(true)
})

it('a window this node was away in (stopped, starved) says nothing of the holders: judged a window after its return', () => {
  const pace = fastFirstWindow()
  // Stopped for 15 s: nothing was read meanwhile.
  const back = T0 + PACE_WINDOW_MS + 15_000
  expect(pace.judge(true, back, back)).toBe(false)
  expect(pace.judge(true, back + PACE_WINDOW_MS - 1, back)).toBe(false)
  pace.delivered(2 * PER_WINDOW, back + 1000)
  expect(pace.judge(true, back + PACE_WINDOW_MS, back)).toBe(false)
  // And holders really slow after the return are judged so.
  expect(pace.judge(true, back + 2 * PACE_WINDOW_MS + 100, back)).toBe(true)
})
