import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { Bans } from '../../../node/cluster/bans.ts'
import { ContentRouter } from '../../../node/cluster/routing.ts'
import type { RoutingComponents } from '../../../node/cluster/routing.ts'
import type { HaveAnswer } from '../../../protocol/messages.ts'

/** A router over fake members: each answers "have" after its delay (never, when null), or once its `gate` opens. */
function router (members: Record<string, { delayMs: number | null, answer: HaveAnswer, gate?: Promise<void> }>): ContentRouter {
  const components = {
    membership: { memberIds: () => Object.keys(members) },
    control: {
      have: async (peer: string, _key: string, options: { signal?: AbortSignal }) => {
        const m = members[peer]
        if (m === undefined) throw new Error('not a member')
        if (m.gate !== undefined) {
          await m.gate
          return m.answer
        }
        if (m.delayMs === null) return await new Promise<never>((_resolve, reject) => options.signal?.addEventListener('abort', () => { reject(new Error('aborted')) }))
        await sleep(m.delayMs)
        return m.answer
      }
    },
    bans: new Bans(),
    logger: pino({ level: 'silent' }),
    libp2p: { peerId: { toString: () => 'self' } }
  } as unknown as RoutingComponents
  return new ContentRouter(components)
}

const complete: HaveAnswer = { t: 'have', state: 'complete', size: 10 }
const none: HaveAnswer = { t: 'have', state: 'none' }

describe('lookup', () => {
  it('waits a moment after the first complete holder for the other members: a download knows every holder from its first ranges', async () => {
    const r = router({ fast: { delayMs: 0, answer: complete }, late: { delayMs: 40, answer: complete } })
    const holders = await r.lookup('ab'.repeat(32), { budgetMs: 5000, dht: false })
    expect(holders.map(h => h.peer).sort()).toEqual(['fast', 'late'])
  })

  it('a member that never answers holds a hit back only for that moment, not for the budget', async () => {
    const r = router({ fast: { delayMs: 0, answer: complete }, silent: { delayMs: null, answer: complete } })
    const started = Date.now()
    const holders = await r.lookup('ab'.repeat(32), { budgetMs: 5000, dht: false, backgroundMs: 5000 })
    expect(holders.map(h => h.peer)).toEqual(['fast'])
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('a member silent past a budget is still asked but not waited for, until it answers again', async () => {
    let wake!: () => void
    const frozen = { delayMs: null, answer: complete, gate: new Promise<void>(resolve => { wake = resolve }) }
    const r = router({ quick: { delayMs: 0, answer: none }, frozen })
    const timed = async (): Promise<{ ms: number, peers: string[] }> => {
      const started = Date.now()
      const holders = await r.lookup('ab'.repeat(32), { budgetMs: 1000, dht: false, backgroundMs: 10_000 })
      return { ms: Date.now() - started, peers: holders.map(h => h.peer) }
    }
    // The lookups wait the budget for it while it may only be slow; silent for 2 s, it is not waited for
    // (far less than the budget, even on a busy machine).
    expect((await timed()).ms).toBeGreaterThanOrEqual(990)
    expect((await timed()).ms).toBeGreaterThanOrEqual(990)
    expect((await timed()).ms).toBeLessThan(500)
    expect((await timed()).ms).toBeLessThan(500)
    // It wakes up and answers what it was asked: the lookups wait for it again (it answers 100 ms after
    // the quick member; not waited for, it would be missing from the holders).
    wake()
    await sleep(10)
    frozen.gate = sleep(100)
    expect((await timed()).peers).toEqual(['frozen'])
  })

  it('a member answering a little past the budget (busy) is still waited for by the lookups made meanwhile', async () => {
    const r = router({ quick: { delayMs: 0, answer: none }, busy: { delayMs: 300, answer: complete } })
    const first = r.lookup('ab'.repeat(32), { budgetMs: 200, dht: false, backgroundMs: 5000 })
    // The first lookup's budget ran out without its answer; the next one still waits for it (in time).
    expect(await first).toEqual([])
    await sleep(50)
    const holders = await r.lookup('cd'.repeat(32), { budgetMs: 400, dht: false, backgroundMs: 5000 })
    expect(holders.map(h => h.peer)).toEqual(['busy'])
  })

  it('settles as soon as every member said no', async () => {
    const r = router({ a: { delayMs: 0, answer: none }, b: { delayMs: 5, answer: none } })
    const started = Date.now()
    expect(await r.lookup('ab'.repeat(32), { budgetMs: 5000, dht: false })).toEqual([])
    expect(Date.now() - started).toBeLessThan(1000)
  })
})

describe('provider records', () => {
  it('go out a moment after they are asked for, a few at a time, every one of them', async () => {
    let running = 0
    let most = 0
    const sent: string[] = []
    const components = {
      membership: { memberIds: () => ['m'] },
      logger: pino({ level: 'silent' }),
      libp2p: {
        peerId: { toString: () => 'self' },
        contentRouting: {
          provide: async (cid: { toString: () => string }) => {
            running++
            most = Math.max(most, running)
            await sleep(5)
            sent.push(cid.toString())
            running--
          }
        }
      }
    } as unknown as RoutingComponents
    const r = new ContentRouter(components, { provideDelayMs: 30 })
    try {
      for (let i = 0; i < 20; i++) r.provide(i.toString(16).padStart(64, '0'))
      r.provide('0'.repeat(64)) // asked again: one record
      await sleep(10)
      expect(sent).toHaveLength(0)
      const started = Date.now()
      while (sent.length < 20 && Date.now() - started < 5000) await sleep(5)
      expect(sent).toHaveLength(20)
      expect(new Set(sent).size).toBe(20)
      expect(most).toBeLessThanOrEqual(4)
      expect(most).toBeGreaterThan(1)
    } finally {
      r.stop()
    }
  })
})
