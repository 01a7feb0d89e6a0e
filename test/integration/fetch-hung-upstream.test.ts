import { expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { Fetcher } from '../../node/fetch/fetcher.ts'
import type { Acquired } from '../../node/fetch/fetcher.ts'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, silent } from './fetch-helpers.ts'

const track = closedAfterEach()

/** Reads the whole blob; what reading it threw (null: it did not). */
async function readingFails (got: Acquired, size: number): Promise<unknown> {
  if (got.kind !== 'blob') throw new Error('expected a blob')
  try {
    for await (const chunk of got.open(0, size)) void chunk
    return null
  } catch (err) {
    return err
  } finally {
    got.release()
  }
}

it('an upstream that sends headers and then nothing on every connection fails the download after two read timeouts, not after every connection\'s retries', async () => {
  const size = 8 << 20
  const server = track(await startFileServer({ files: { '/h.bin': { size, seed: 5 } }, faults: { stallAfterBytes: 0 } }))
  const rig = track(await makeRig())
  await rig.fetcher.stop()
  // Each connection alone would try 6 times, 1 s each, with backoff between; stalls add connections.
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, sockets: rig.sockets ?? undefined, logger: silent }, { retryBaseMs: 200, bodyTimeoutMs: 1000, headersTimeoutMs: 1000, maxRetries: 5 })
  const started = Date.now()
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 5) }), { url: new URL(`${server.url}/h.bin`) }, { chunkSize: 1 << 20, concurrency: 4 })
  const error = await readingFails(got, size)
  expect((error as { code?: string } | null)?.code).toBe('ERR_UPSTREAM_TIMEOUT')
  expect((error as Error).message).toMatch(/No byte arrived on any connection for 2 s/)
  expect(Date.now() - started).toBeLessThan(6000)
  // Nothing half-made is served as the blob afterwards.
  expect(await rig.store.lookup(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 5) }).key)).toBeUndefined()
}, 30_000)

it('an upstream that sends a few KiB of every response and then holds the body fails the download after the retries, not hours later', async () => {
  const size = 8 << 20
  const server = track(await startFileServer({ files: { '/t.bin': { size, seed: 6 } }, faults: { stallAfterBytes: 4096 } }))
  // Plain undici connections: each range's body timeout is the fetcher's.
  const rig = track(await makeRig({}, {}, { sockets: false }))
  await rig.fetcher.stop()
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, logger: silent }, { retryBaseMs: 20, bodyTimeoutMs: 300, headersTimeoutMs: 1000, maxRetries: 3, quietLimitMs: 10_000 })
  const started = Date.now()
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 6) }), { url: new URL(`${server.url}/t.bin`) }, { chunkSize: 1 << 20, concurrency: 2 })
  const error = await readingFails(got, size)
  // At 4 KiB per 300 ms it would have crawled on for about ten minutes.
  expect((error as { code?: string } | null)?.code).toBe('ERR_UPSTREAM_TIMEOUT')
  expect((error as Error).message).toMatch(/Upstream keeps stalling: 4 attempts in a row at byte \d+ each brought under 64 KiB/)
  expect(Date.now() - started).toBeLessThan(15_000)
}, 30_000)

it('a download is not failed as quiet while this process was too busy to read its connections', async () => {
  const size = 8 << 20
  // 2 MB/s per connection: the download takes about a second, with bytes arriving all along.
  const server = track(await startFileServer({ files: { '/b.bin': { size, seed: 7 } }, perConnectionBps: 2_000_000 }))
  const rig = track(await makeRig())
  await rig.fetcher.stop()
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, sockets: rig.sockets ?? undefined, logger: silent }, { bodyTimeoutMs: 30_000, quietLimitMs: 2000 })
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 7) }), { url: new URL(`${server.url}/b.bin`) }, { chunkSize: 1 << 20, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error('expected a blob')
  const hash = createHash('sha256')
  try {
    let blocked = false
    for await (const chunk of got.open(0, size)) {
      hash.update(chunk)
      if (!blocked) {
        // Thousands of clients served at once keep the event loop from the sockets for seconds: the
        // watchdog's tick then comes late, before the bytes that arrived meanwhile are read.
        blocked = true
        const until = Date.now() + 3500
        while (Date.now() < until) { /* busy */ }
      }
    }
  } finally {
    got.release()
  }
  expect(hash.digest('hex')).toBe(generatedSha256(size, 7))
}, 30_000)
