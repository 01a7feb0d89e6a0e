import { setTimeout as sleep } from 'node:timers/promises'
import { expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { digestIdentity, urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 12 * MiB
const track = closedAfterEach()

/**
 * The file is replaced upstream (same size, new ETag) 0.5 s into a transfer that needs 1.5 s: what the
 * client got (or how its stream failed), and the requests the upstream had after the change.
 */
async function replacedMidway (cacheBytes: number, from: 'passthrough' | 'download'): Promise<{ outcome: { hex: string, bytes: number } | Error, afterChange: number, failedInMs: number }> {
  const server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 1 } }, perConnectionBps: 2 * MiB }))
  const rig = track(await makeRig({ maxBytes: cacheBytes }))
  const url = new URL(server.url + '/f.bin')
  const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
  expect(got.from).toBe(from)
  const read = sha256Of(got.open(0, SIZE)).catch((err: unknown) => err as Error).finally(() => { got.release() })
  await sleep(500)
  server.setFile('/f.bin', { size: SIZE, seed: 2 })
  const requests = server.stats.requests
  const t0 = performance.now()
  const outcome = await read
  return { outcome, afterChange: server.stats.requests - requests, failedInMs: performance.now() - t0 }
}

it.each([
  ['passed through uncached', 4 * MiB, 'passthrough' as const],
  ['downloaded into the cache', 1 << 30, 'download' as const]
])('a file replaced upstream mid-transfer, %s, fails the client\'s stream at once: never bytes of two versions', async (_name, cacheBytes, from) => {
  const got = await replacedMidway(cacheBytes, from)
  // A complete stream would have to be all of the first version; here the change comes too early for that.
  expect(got.outcome).toBeInstanceOf(Error)
  expect((got.outcome as Error).message).toMatch(/changed/)
  // Each range saw the new version once, asked once more, and the transfer ended: no retries with backoff.
  expect(got.failedInMs).toBeLessThan(1500)
  expect(got.afterChange).toBeLessThanOrEqual(2 * 4 + 1)
})

it('a pass-through whose file changed before its first range is all of the new version', async () => {
  // The control: a stream that began after the change is simply the new file.
  const server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 1 } }, perConnectionBps: 4 * MiB }))
  const rig = track(await makeRig({ maxBytes: 4 * MiB }))
  const url = new URL(server.url + '/f.bin')
  server.setFile('/f.bin', { size: SIZE, seed: 3 })
  const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
  const read = await sha256Of(got.open(0, SIZE)).finally(() => { got.release() })
  expect(read).toEqual({ hex: generatedSha256(SIZE, 3), bytes: SIZE })
})

it('a blob of known digest is not failed by an ETag that differs between requests (CDN edges): its digest is the check', async () => {
  const server = track(await startFileServer({ files: { '/b.bin': { size: SIZE, seed: 4 } }, perConnectionBps: 2 * MiB }))
  const rig = track(await makeRig())
  const url = new URL(server.url + '/b.bin')
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(SIZE, 4) }), { url }, { chunkSize: MiB, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
  const read = sha256Of(got.open(0, SIZE)).finally(() => { got.release() })
  await sleep(500)
  server.setFile('/b.bin', { size: SIZE, seed: 4, etag: '"another-edge"' })
  expect(await read).toEqual({ hex: generatedSha256(SIZE, 4), bytes: SIZE })
})
