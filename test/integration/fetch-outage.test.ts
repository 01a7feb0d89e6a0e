import { expect, it } from 'vitest'
import { Fetcher } from '../../node/fetch/fetcher.ts'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, sha256Of, silent } from './fetch-helpers.ts'

const track = closedAfterEach()

it('an upstream that refuses every connection for a while mid-download is waited for, well past the retries, and the download completes', async () => {
  const size = 8 << 20
  const state = { down: false, refused: 0 }
  const server = track(await startFileServer({
    files: { '/o.bin': { size, seed: 8 } },
    perConnectionBps: 2_000_000,
    // Every response is cut after 512 KiB: the pieces keep asking again, and meet the outage.
    faults: { failAfterBytes: 512 << 10 },
    onRequest: (req) => {
      if (!state.down) return false
      state.refused++
      req.socket.destroy()
      return true
    }
  }))
  const rig = track(await makeRig())
  await rig.fetcher.stop()
  // 5 tries with backoff from 200 ms: about 6 s, then the download failed.
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, sockets: rig.sockets ?? undefined, logger: silent }, { retryBaseMs: 200, maxRetries: 5, quietLimitMs: 20_000 })
  const identity = digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 8) })
  const got = await rig.fetcher.acquire(identity, { url: new URL(`${server.url}/o.bin`) }, { chunkSize: 1 << 20, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error('expected a blob')
  setTimeout(() => { state.down = true }, 300)
  setTimeout(() => { state.down = false }, 9_300)
  const sha = await sha256Of(got.open(0, size)).finally(() => { got.release() })
  expect(sha.hex).toBe(generatedSha256(size, 8))
  expect(state.refused).toBeGreaterThan(4)
}, 40_000)

it('an upstream that answers 429 with Retry-After is asked again no sooner than it said', async () => {
  const size = 4 << 20
  const state = { limitedUntil: 0, refused: 0 }
  const server = track(await startFileServer({
    files: { '/r.bin': { size, seed: 9 } },
    onRequest: (req, res) => {
      // The first range is served; then every range for a second is refused with Retry-After: 1.
      if (!/^bytes=0-/.test(req.headers.range ?? 'bytes=0-')) {
        if (state.limitedUntil === 0) state.limitedUntil = Date.now() + 1000
        if (Date.now() < state.limitedUntil) {
          state.refused++
          res.writeHead(429, { 'retry-after': '1', 'content-length': '0' })
          res.end()
          return true
        }
      }
      return false
    }
  }))
  const rig = track(await makeRig())
  await rig.fetcher.stop()
  // Without heeding it, backoff from 20 ms would ask each range again 5 times within that second.
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, sockets: rig.sockets ?? undefined, logger: silent }, { retryBaseMs: 20, maxRetries: 5, quietLimitMs: 20_000 })
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 9) }), { url: new URL(`${server.url}/r.bin`) }, { chunkSize: 1 << 20, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error('expected a blob')
  const sha = await sha256Of(got.open(0, size)).finally(() => { got.release() })
  expect(sha.hex).toBe(generatedSha256(size, 9))
  expect(state.refused).toBeGreaterThan(0)
  // Each connection (4, and the short-lived extras a waiting reader and the stall watchdog add) was
  // refused once: 8 here, where backoff alone asked 48 times.
  expect(state.refused).toBeLessThanOrEqual(12)
}, 30_000)

it('a first request cut before any answer is asked once more, not answered 502', async () => {
  const size = 1 << 20
  let cut = 0
  const server = track(await startFileServer({
    files: { '/c.bin': { size, seed: 10 } },
    onRequest: (req) => {
      if (cut > 0) return false
      cut++
      req.socket.destroy()
      return true
    }
  }))
  const rig = track(await makeRig())
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 10) }), { url: new URL(`${server.url}/c.bin`) }, { chunkSize: 1 << 20, concurrency: 2 })
  if (got.kind !== 'blob') throw new Error('expected a blob')
  const sha = await sha256Of(got.open(0, size)).finally(() => { got.release() })
  expect(sha.hex).toBe(generatedSha256(size, 10))
  expect(cut).toBe(1)
})
