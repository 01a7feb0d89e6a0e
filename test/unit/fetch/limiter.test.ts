import { describe, expect, it } from 'vitest'
import { Limiter } from '../../../node/fetch/limiter.ts'

/** Lets settled promises' callbacks run. */
async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

describe('Limiter (server.max_concurrent_downloads)', () => {
  it('runs at most max at once; the rest wait in order and are never refused', async () => {
    const limiter = new Limiter(2)
    const order: string[] = []
    const a = await limiter.acquire()
    const b = await limiter.acquire()
    const waitFor = async (name: string): Promise<() => void> => await limiter.acquire().then(release => { order.push(name); return release })
    const c = waitFor('c')
    void waitFor('d')
    void waitFor('e')
    await settle()
    expect([limiter.active, limiter.waiting, order]).toEqual([2, 3, []])
    a()
    await settle()
    expect(order).toEqual(['c'])
    b()
    ;(await c)()
    await settle()
    expect(order).toEqual(['c', 'd', 'e'])
    expect([limiter.active, limiter.waiting]).toEqual([2, 0])
  })

  it('lets urgent waiters (a reader waits for that piece) pass the others, in their own order', async () => {
    const limiter = new Limiter(1)
    const order: string[] = []
    const release = await limiter.acquire()
    const wait = (name: string, urgent: boolean): Promise<() => void> => limiter.acquire({ urgent }).then(r => { order.push(name); r(); return r })
    const all = [wait('plain1', false), wait('urgent1', true), wait('plain2', false), wait('urgent2', true)]
    release()
    await Promise.all(all)
    expect(order).toEqual(['urgent1', 'urgent2', 'plain1', 'plain2'])
  })

  it('a waiter whose signal aborts leaves the queue with ERR_ABORTED and never takes a slot', async () => {
    const limiter = new Limiter(1)
    const release = await limiter.acquire()
    const ac = new AbortController()
    const gone = limiter.acquire({ signal: ac.signal })
    const next = limiter.acquire()
    ac.abort(new Error('client left'))
    await expect(gone).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(limiter.waiting).toBe(1)
    release()
    const r = await next
    expect(limiter.active).toBe(1)
    r()
    expect([limiter.active, limiter.waiting]).toEqual([0, 0])
  })

  it('refuses an already aborted signal at once, and a release called twice frees one slot', async () => {
    const limiter = new Limiter(0)
    expect(limiter.max).toBe(1)
    await expect(limiter.acquire({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    const release = await limiter.acquire()
    release()
    release()
    expect(limiter.active).toBe(0)
    const a = await limiter.acquire()
    let second = false
    void limiter.acquire().then(() => { second = true })
    await settle()
    expect(second).toBe(false)
    a()
  })
})
