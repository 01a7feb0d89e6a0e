import { createHash } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { GeneratedContent, generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import type { BlobHandle } from '../../node/fetch/fetcher.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { CursorReader } from '../../node/fetch/cursor-reader.ts'
import { GcPacer } from '../../node/fetch/gc-pacer.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 2 * MiB + 333
const OPTS = { chunkSize: 256 * 1024, concurrency: 4 }
let server: FileServer | undefined
let rig: Rig | undefined

const track = closedAfterEach()

async function blob (r: Rig, url: URL, opts = OPTS): Promise<BlobHandle> {
  const a = await r.fetcher.acquire(urlIdentity(url), { url }, opts)
  if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
  return a
}

async function slice (seed: number, size: number, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = []
  for (const c of new GeneratedContent(size, seed).chunks(start, end - 1, 65536)) parts.push(Buffer.from(await c))
  return Buffer.concat(parts)
}

describe('single flight and streaming', () => {
  it('concurrent readers share one download', async () => {
    server = track(await startFileServer({ files: { '/s.bin': { size: SIZE, seed: 2 } }, perConnectionBps: 2 * MiB }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/s.bin')
    const handles = await Promise.all(Array.from({ length: 6 }, async () => await blob(rig as Rig, url)))
    expect(handles.filter(h => h.from === 'download').length).toBe(6)
    const results = await Promise.all(handles.map(async h => await sha256Of(h.open(0, SIZE))))
    for (const h of handles) h.release()
    for (const r of results) expect(r.hex).toBe(generatedSha256(SIZE, 2))
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 1.02)
  })

  it('a Range far into a file being downloaded is fetched first and served from disk', async () => {
    server = track(await startFileServer({ files: { '/r.bin': { size: 4 * MiB, seed: 3 } }, perConnectionBps: MiB }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/r.bin')
    const whole = await blob(rig, url, { chunkSize: 512 * 1024, concurrency: 2 })
    const start = 3 * MiB + 1000
    const t0 = Date.now()
    const part = await blob(rig, url, { chunkSize: 512 * 1024, concurrency: 2 })
    const got = await sha256Of(part.open(start, start + 5000))
    const elapsed = Date.now() - t0
    part.release()
    const want = await slice(3, 4 * MiB, start, start + 5000)
    expect(got.bytes).toBe(5000)
    expect(got.hex).toBe(createHash('sha256').update(want).digest('hex'))
    // In file order this offset would take ~3 s at 1 MiB/s per connection over two connections.
    expect(elapsed).toBeLessThan(1500)
    expect(rig.fetcher.activeDownloads().length).toBe(1)
    whole.release()
  })

  it('a peer reading far ahead of the one connection on its way waits for it: no second request, no idle timeout', async () => {
    const size = 2 * MiB
    server = track(await startFileServer({ files: { '/p.bin': { size, seed: 8 } }, perConnectionBps: MiB }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/p.bin')
    const h = await blob(rig, url, { chunkSize: size, concurrency: 1 })
    const key = urlIdentity(url).key
    await until(() => rig?.fetcher.inFlight(key) != null)
    const start = 1.5 * MiB
    // ~1.5 s away at 1 MiB/s, far beyond the idle limit: the connection's progress keeps the reader alive.
    const cursor = rig.fetcher.inFlight(key)?.cursor(start, size, 400)
    if (cursor == null) throw new Error('no in-flight reader')
    const got = await sha256Of(new CursorReader(cursor, new GcPacer(), MiB))
    h.release()
    expect(got.hex).toBe(createHash('sha256').update(await slice(8, size, start, size)).digest('hex'))
    // Cutting the connection's range at the reader's offset would have asked the upstream again there.
    expect(server.stats.requests).toBe(1)
    expect(server.stats.bytesSent).toBe(size)
  })

  it('an abandoned download finishes in the background and is cached', async () => {
    server = track(await startFileServer({ files: { '/a.bin': { size: SIZE, seed: 4 } }, perConnectionBps: 2 * MiB }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/a.bin')
    const h = await blob(rig, url)
    const s = h.open(0, SIZE)
    await new Promise(resolve => s.once('data', resolve))
    s.destroy()
    h.release()
    await until(() => rig?.store.stats().file_count === 1)
    const again = await blob(rig, url)
    expect(again.from).toBe('cache')
    expect((await sha256Of(again.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 4))
    again.release()
  })

  it('without finish_abandoned the download stops and its progress is kept for later', async () => {
    server = track(await startFileServer({ files: { '/b.bin': { size: SIZE, seed: 5 } }, perConnectionBps: MiB }))
    rig = track(await makeRig({}, { finishAbandoned: false }))
    const url = new URL(server.url + '/b.bin')
    const h = await blob(rig, url)
    const s = h.open(0, SIZE)
    await new Promise(resolve => s.once('data', resolve))
    s.destroy()
    h.release()
    await until(() => rig?.fetcher.activeDownloads().length === 0)
    expect(rig.store.stats().file_count).toBe(0)
    // Progress is saved asynchronously (LevelDB); it shows up shortly after the download stopped.
    await until(async () => await rig?.store.getPartial(urlIdentity(url).key) !== undefined, 5_000)
    expect((await readdir(join(rig.dir, 'tmp'))).length).toBe(1)
  })

  it('the cap queues work instead of refusing it: downloads, and their further connections', async () => {
    server = track(await startFileServer({ files: { '/c1.bin': { size: SIZE, seed: 6 }, '/c2.bin': { size: SIZE, seed: 7 } }, perConnectionBps: 4 * MiB }))
    rig = track(await makeRig({}, { maxConcurrentDownloads: 2 }))
    const u1 = new URL(server.url + '/c1.bin')
    const u2 = new URL(server.url + '/c2.bin')
    const [h1, h2] = await Promise.all([blob(rig, u1), blob(rig, u2)])
    const [r1, r2] = await Promise.all([sha256Of(h1.open(0, SIZE)), sha256Of(h2.open(0, SIZE))])
    h1.release()
    h2.release()
    expect(r1.hex).toBe(generatedSha256(SIZE, 6))
    expect(r2.hex).toBe(generatedSha256(SIZE, 7))
    // Requests in flight, not open sockets: an idle keep-alive connection of the first responses' pool may
    // stay open beside the range connections. Each download's own connection, plus 2 further ones.
    expect(server.stats.peakResponses).toBeLessThanOrEqual(4)
    expect(server.stats.peakResponses).toBeGreaterThan(2)
  })

  it('a small file asked for while two big downloads hold every further connection starts at once', async () => {
    const BIG = 16 * MiB
    server = track(await startFileServer({ files: { '/b1.bin': { size: BIG, seed: 8 }, '/b2.bin': { size: BIG, seed: 9 }, '/s.bin': { size: 1000, seed: 10 } }, perConnectionBps: 256 << 10 }))
    rig = track(await makeRig({}, { maxConcurrentDownloads: 4 }))
    const [h1, h2] = await Promise.all([blob(rig, new URL(server.url + '/b1.bin')), blob(rig, new URL(server.url + '/b2.bin'))])
    await until(() => rig?.fetcher.limiter.waiting !== 0)
    const t0 = performance.now()
    const small = await blob(rig, new URL(server.url + '/s.bin'))
    const got = await sha256Of(small.open(0, 1000))
    const ms = performance.now() - t0
    small.release()
    h1.release()
    h2.release()
    expect(got.hex).toBe(generatedSha256(1000, 10))
    // Behind the big downloads' connections it waited for one of them to end: 21 s here.
    expect(ms).toBeLessThan(3000)
  })
})
