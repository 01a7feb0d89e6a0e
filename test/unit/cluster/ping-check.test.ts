import { describe, expect, it } from 'vitest'
import { answersPing } from '../../../node/cluster/ping-check.ts'

const opts = { timeoutMs: 60 }

/** A ping that never answers: it fails when its deadline passes. */
const silent = async (signal: AbortSignal): Promise<unknown> => await new Promise((_resolve, reject) => {
  signal.addEventListener('abort', () => { reject(signal.reason as Error) }, { once: true })
})

describe('answersPing', () => {
  it('an answer settles it', async () => {
    expect(await answersPing(async () => 'pong', opts)).toMatchObject({ alive: true })
  })

  it('a deadline passed without an answer: gone', async () => {
    expect(await answersPing(silent, opts)).toMatchObject({ alive: false })
    expect(await answersPing(silent, { ...opts, heardRecently: () => false })).toMatchObject({ alive: false })
  })

  it('a timeout while the peer was heard from otherwise is a slow peer\'s: alive', async () => {
    expect(await answersPing(silent, { ...opts, heardRecently: () => true })).toMatchObject({ alive: true, heard: true })
  })

  it('a refused or reset connection is gone at once, even just after the peer was heard from', async () => {
    const began = performance.now()
    const r = await answersPing(async () => { throw new Error('connection refused') }, { ...opts, heardRecently: () => true })
    expect(r).toMatchObject({ alive: false, err: 'connection refused' })
    expect(performance.now() - began).toBeLessThan(60)
  })
})
