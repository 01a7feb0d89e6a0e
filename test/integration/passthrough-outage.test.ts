import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 12 * MiB
const track = closedAfterEach()

/**
 * A file larger than the cache (4 MiB) streams through uncached while, from 1 s in and for `forMs`,
 * every request its upstream gets is answered by `trouble`. What the client got, and the requests troubled.
 */
async function passThroughWhile (forMs: number, trouble: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ hex: string, bytes: number, troubled: number }> {
  const state = { on: false, troubled: 0 }
  const server = track(await startFileServer({
    files: { '/big.bin': { size: SIZE, seed: 21 } },
    perConnectionBps: 2 * MiB,
    onRequest: async (req, res) => {
      if (!state.on) return false
      state.troubled++
      trouble(req, res)
      return true
    }
  }))
  const rig = track(await makeRig({ maxBytes: 4 * MiB }))
  const url = new URL(server.url + '/big.bin')
  const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
  expect(got.from).toBe('passthrough')
  const read = sha256Of(got.open(0, SIZE)).finally(() => { got.release() })
  await sleep(1000)
  state.on = true
  await sleep(forMs)
  state.on = false
  return { ...await read, troubled: state.troubled }
}

it('a file passed through uncached survives its upstream resetting every request for 2 s mid-transfer', async () => {
  const got = await passThroughWhile(2000, req => { req.socket.resetAndDestroy() })
  expect(got.troubled).toBeGreaterThan(4)
  expect(got).toMatchObject({ bytes: SIZE, hex: generatedSha256(SIZE, 21) })
})

it('a file passed through uncached waits out a 503 with Retry-After instead of failing the client', async () => {
  const got = await passThroughWhile(1500, (_req, res) => { res.writeHead(503, { 'retry-after': '1', 'content-length': '0' }).end() })
  expect(got.troubled).toBeGreaterThan(0)
  expect(got).toMatchObject({ bytes: SIZE, hex: generatedSha256(SIZE, 21) })
})

// Each request is held for 1.5 s, far below the read timeout (30 s here): a request given up only at the
// read timeout kept the client waiting that long.
it.each([
  ['never answered', (): void => {}],
  ['answered with headers and then nothing', (req: IncomingMessage, res: ServerResponse): void => {
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '')
    if (m === null) return
    res.writeHead(206, { 'content-range': `bytes ${m[1]}-${m[2]}/${SIZE}`, 'content-length': String(Number(m[2]) - Number(m[1]) + 1) })
    res.flushHeaders()
  }]
])('a pass-through request %s is asked again long before the read timeout', async (_name, trouble) => {
  const t0 = performance.now()
  const got = await passThroughWhile(1500, trouble)
  expect(got.troubled).toBeGreaterThan(0)
  expect(got).toMatchObject({ bytes: SIZE, hex: generatedSha256(SIZE, 21) })
  expect(performance.now() - t0).toBeLessThan(20_000)
}, 60_000)

it('an upstream slow to answer every request (6 s, beyond the first stall limit) still passes files through: its wait is learnt', async () => {
  const size = 6 * MiB
  const server = track(await startFileServer({ files: { '/slow.bin': { size, seed: 5 } }, latencyMs: 6000 }))
  const rig = track(await makeRig({ maxBytes: MiB }))
  const url = new URL(server.url + '/slow.bin')
  const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
  expect(got.from).toBe('passthrough')
  const t0 = performance.now()
  const read = await sha256Of(got.open(0, size)).finally(() => { got.release() })
  expect(read).toEqual({ hex: generatedSha256(size, 5), bytes: size })
  // The 5 ranges after the first, 4 at a time, each wait 6 s: 12 s. The first response's wait is known,
  // so none is given up at the first limit (5 s) and asked again (17 s and more).
  expect(performance.now() - t0).toBeLessThan(15_000)
}, 90_000)
