import { createHash } from 'node:crypto'
import { expect, it } from 'vitest'
import { Fetcher } from '../../node/fetch/fetcher.ts'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, silent } from './fetch-helpers.ts'

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
  const hash = createHash('sha256')
  try {
    for await (const chunk of got.open(0, size)) hash.update(chunk)
  } finally {
    got.release()
  }
  expect(hash.digest('hex')).toBe(generatedSha256(size, 8))
  expect(state.refused).toBeGreaterThan(4)
}, 40_000)
