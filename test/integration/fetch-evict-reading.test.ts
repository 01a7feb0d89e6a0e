import { once } from 'node:events'
import { expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 4 * MiB
const track = closedAfterEach()

it('a blob its download\'s client is still reading is not evicted for another file: that would free nothing while the file is open', async () => {
  const server = track(await startFileServer({ files: Object.fromEntries(['/a.bin', '/b.bin', '/c.bin'].map((p, i) => [p, { size: SIZE, seed: 31 + i }])) }))
  const rig = track(await makeRig({ maxBytes: 6 * MiB, sweepEveryMs: 3600_000 }))
  const url = (path: string): URL => new URL(server.url + path)
  const acquire = async (path: string): Promise<Extract<Awaited<ReturnType<typeof rig.fetcher.acquire>>, { kind: 'blob' }>> => {
    const got = await rig.fetcher.acquire(urlIdentity(url(path)), { url: url(path) }, { chunkSize: MiB, concurrency: 4 })
    if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
    return got
  }
  // A slow client of a's download: it read a little, and the download committed meanwhile.
  const a = await acquire('/a.bin')
  expect(a.from).toBe('download')
  const reader = a.open(0, SIZE)
  await once(reader, 'readable')
  reader.pause()
  await until(() => rig.store.stats().file_count === 1)
  // b does not fit beside a (8 of 6 MiB), and a is in use: b passes through, a stays.
  const b = await acquire('/b.bin')
  expect((await sha256Of(b.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 32))
  b.release()
  expect(await rig.store.lookup(urlIdentity(url('/a.bin')).key)).toBeDefined()
  expect(await rig.store.lookup(urlIdentity(url('/b.bin')).key)).toBeUndefined()
  // a's client reads to the end and leaves: a may go for the next file.
  reader.resume()
  reader.on('data', () => {})
  await once(reader, 'end')
  a.release()
  const c = await acquire('/c.bin')
  expect((await sha256Of(c.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 33))
  c.release()
  await until(async () => await rig.store.lookup(urlIdentity(url('/c.bin')).key) !== undefined)
  expect(await rig.store.lookup(urlIdentity(url('/a.bin')).key)).toBeUndefined()
})

it('a blob a cache hit takes up while an eviction is under way stays: its reader would find the file gone', async () => {
  const server = track(await startFileServer({ files: { '/a.bin': { size: 3 * MiB, seed: 41 }, '/b.bin': { size: 3 * MiB, seed: 42 }, '/d.bin': { size: 6 * MiB, seed: 43 } } }))
  const rig = track(await makeRig({ maxBytes: 9 * MiB, sweepEveryMs: 3600_000 }))
  const url = (path: string): URL => new URL(server.url + path)
  const fetchWhole = async (path: string, size: number, seed: number): Promise<void> => {
    const got = await rig.fetcher.acquire(urlIdentity(url(path)), { url: url(path) }, { chunkSize: MiB, concurrency: 4 })
    if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
    expect((await sha256Of(got.open(0, size))).hex).toBe(generatedSha256(size, seed))
    got.release()
    await until(() => rig.fetcher.activeDownloads().length === 0)
  }
  const digestOf = async (path: string): Promise<string | undefined> => (await rig.store.lookup(urlIdentity(url(path)).key))?.entry.digest
  await fetchWhole('/a.bin', 3 * MiB, 41)
  await fetchWhole('/b.bin', 3 * MiB, 42)
  const [a, b] = [await digestOf('/a.bin'), await digestOf('/b.bin')] as [string, string]
  // d needs both gone (6 of 9 MiB, under the low watermark); b is taken up once a went, before b's turn.
  const d = fetchWhole('/d.bin', 6 * MiB, 43)
  // Looked at every turn of the event loop: b's turn comes a few turns after a's.
  const deadline = Date.now() + 10_000
  while (rig.store.blobSize(a) !== undefined && Date.now() < deadline) await new Promise(resolve => setImmediate(resolve))
  expect(rig.store.blobSize(a)).toBeUndefined()
  const release = rig.store.use(b)
  await d
  expect(rig.store.blobSize(b)).toBe(3 * MiB)
  const hit = await rig.fetcher.acquire(urlIdentity(url('/b.bin')), { url: url('/b.bin') }, { chunkSize: MiB, concurrency: 4 })
  if (hit.kind !== 'blob') throw new Error(`expected the file, got ${hit.kind}`)
  expect(hit.from).toBe('cache')
  expect((await sha256Of(hit.open(0, 3 * MiB))).hex).toBe(generatedSha256(3 * MiB, 42))
  hit.release()
  release()
})
