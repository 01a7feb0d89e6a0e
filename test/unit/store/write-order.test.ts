import { describe, expect, it } from 'vitest'
import { WriteOrder } from '../../../node/store/write-order.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('WriteOrder', () => {
  it('runs one id\'s writes in the order issued, even when an earlier one is slower or fails', async () => {
    const order = new WriteOrder()
    const log: string[] = []
    const slow = order.run('a', async () => { await sleep(30); log.push('put') })
    const failing = order.run('a', async () => { log.push('bad'); throw new Error('disk') })
    const del = order.run('a', async () => { log.push('del') })
    await del
    await slow
    await expect(failing).rejects.toThrow('disk')
    expect(log).toEqual(['put', 'bad', 'del'])
  })

  it('does not hold back other ids, and settled() waits for what was issued', async () => {
    const order = new WriteOrder()
    const log: string[] = []
    const slow = order.run('a', async () => { await sleep(30); log.push('a') })
    await order.run('b', async () => { log.push('b') })
    expect(log).toEqual(['b'])
    await order.settled('a')
    expect(log).toEqual(['b', 'a'])
    await slow
    await order.settled('never-written')
  })
})
