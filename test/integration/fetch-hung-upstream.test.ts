import { expect, it } from 'vitest'
import { Fetcher } from '../../node/fetch/fetcher.ts'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, silent } from './fetch-helpers.ts'

const track = closedAfterEach()

it('an upstream that sends headers and then nothing on every connection fails the download after two read timeouts, not after every connection\'s retries', async () => {
  const size = 8 << 20
  const server = track(await startFileServer({ files: { '/h.bin': { size, seed: 5 } }, faults: { stallAfterBytes: 0 } }))
  const rig = track(await makeRig())
  await rig.fetcher.stop()
  // Each connection alone would try 6 times, 1 s each, with backoff between; stalls add connections.
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, sockets: rig.sockets ?? undefined, logger: silent }, { retryBaseMs: 200, bodyTimeoutMs: 1000, headersTimeoutMs: 1000, maxRetries: 5 })
  const started = Date.now()
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 5) }), { url: new URL(`${server.url}/h.bin`) }, { chunkSize: 1 << 20, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error('expected a blob')
  let error: unknown = null
  try {
    for await (const chunk of got.open(0, size)) void chunk
  } catch (err) {
    error = err
  } finally {
    got.release()
  }
  expect((error as { code?: string } | null)?.code).toBe('ERR_UPSTREAM_TIMEOUT')
  expect((error as Error).message).toMatch(/No byte arrived on any connection for 2 s/)
  expect(Date.now() - started).toBeLessThan(6000)
  // Nothing half-made is served as the blob afterwards.
  expect(await rig.store.lookup(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 5) }).key)).toBeUndefined()
}, 30_000)
