import type { VolatileBody } from '../../../node/upstream/volatile-body.ts'

/** A body made from a VolatileBody (VerifiedUnits, VouchedFrames, CountedBody): what a test reads of it. */
interface Derived {
  on: (event: 'data', listener: (chunk: Buffer) => void) => unknown
  once: (event: 'end' | 'error', listener: (arg?: unknown) => void) => unknown
  pause: () => unknown
  resume: () => unknown
}

/**
 * Feeds `data` to `raw` the way RangeSockets does: every chunk a view of one shared buffer, scribbled over
 * as soon as the delivery returns. `pauseEach`: the reader of `body` pauses after every chunk it gets and
 * resumes a moment later, as the body sink does for a thread-pool write (`whilePaused` counts chunks that
 * came anyway). Resolves with what came out and how it ended.
 */
export async function feedThrough (body: Derived, raw: VolatileBody, data: Buffer, chunk: number, pauseEach = false): Promise<{ out: Buffer, err: unknown, whilePaused: number }> {
  const out: Buffer[] = []
  let paused = false
  let whilePaused = 0
  const ended = new Promise<unknown>((resolve) => {
    body.on('data', (c: Buffer) => {
      if (paused) whilePaused++
      out.push(Buffer.from(c))
      if (!pauseEach) return
      paused = true
      body.pause()
      setTimeout(() => { paused = false; body.resume() }, 2)
    })
    body.once('end', () => resolve(null))
    body.once('error', resolve)
  })
  const shared = Buffer.alloc(chunk)
  await new Promise(resolve => setImmediate(resolve))
  for (let i = 0; i < data.length && !raw.destroyed; i += chunk) {
    const n = data.copy(shared, 0, i, i + chunk)
    raw.deliver(shared.subarray(0, n))
    shared.fill(0xee)
  }
  raw.finish()
  const err = await ended
  return { out: Buffer.concat(out), err, whilePaused }
}
