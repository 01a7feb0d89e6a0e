import { describe, expect, it } from 'vitest'
import { PartialSaver } from '../../../node/fetch/partial-saver.ts'
import type { PartialEntry } from '../../../node/store/index-db.ts'

function rig (minIntervalMs: number): { saver: PartialSaver, writes: number[], idle: () => number, finish: () => void, state: { n: number } } {
  const state = { n: 0 }
  const writes: number[] = []
  let idles = 0
  let release: (() => void) | null = null
  const saver = new PartialSaver({
    entry: () => ({ updatedAt: state.n } as unknown as PartialEntry),
    wanted: () => true,
    write: async (e) => {
      writes.push(e.updatedAt)
      await new Promise<void>(resolve => { release = resolve })
    },
    onError: () => {},
    onIdle: () => { idles++ },
    minIntervalMs
  })
  return { saver, writes, idle: () => idles, finish: () => { const r = release; release = null; r?.() }, state }
}

const tick = async (ms = 0): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('a download\'s progress saver', () => {
  it('saveSoon: one entry at a time, at most one per interval, always the newest state', async () => {
    const r = rig(60)
    r.state.n = 1
    r.saver.saveSoon()
    r.state.n = 2
    r.saver.saveSoon()
    r.state.n = 3
    r.saver.saveSoon()
    expect(r.writes).toEqual([1])
    r.finish()
    await tick()
    // The saves asked for meanwhile wait for the interval, then write once.
    expect(r.writes).toEqual([1])
    expect(r.saver.busy).toBe(true)
    await tick(80)
    expect(r.writes).toEqual([1, 3])
    r.finish()
    await tick()
    expect(r.saver.busy).toBe(false)
    expect(r.idle()).toBe(1)
  })

  it('save writes at once (a finished piece), also when a saveSoon waits, and right after a write under way', async () => {
    const r = rig(10_000)
    r.state.n = 1
    r.saver.save()
    r.finish()
    await tick()
    r.state.n = 2
    r.saver.saveSoon()
    expect(r.writes).toEqual([1])
    r.saver.save()
    expect(r.writes).toEqual([1, 2])
    r.state.n = 3
    r.saver.save()
    r.finish()
    await tick()
    expect(r.writes).toEqual([1, 2, 3])
  })
})
