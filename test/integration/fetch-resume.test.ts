import { describe, expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import type { BlobHandle } from '../../node/fetch/fetcher.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { PieceBitmap } from '../../node/store/partial.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'
import { LEARNING_RANGE } from '../../node/fetch/final-keys.ts'

const MiB = 1 << 20
let server: FileServer | undefined
let rig: Rig | undefined

const track = closedAfterEach()

async function blob (r: Rig, url: URL, opts: object): Promise<BlobHandle> {
  const a = await r.fetcher.acquire(urlIdentity(url), { url }, opts)
  if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
  return a
}

const STOPPED_SIZE = 4 * MiB
const STOPPED_PIECE = 256 * 1024
const stoppedOpts = { chunkSize: STOPPED_PIECE, concurrency: 4 }

/** A 4 MiB download of `path` left once `pieces` pieces were on disk, and the node restarted. */
async function stoppedMidway (path: string, seed: number, pieces: number): Promise<{ r: Rig, s: FileServer, url: URL, key: string }> {
  const s = server = track(await startFileServer({
    files: { [path]: { size: STOPPED_SIZE, seed, lastModified: new Date(Date.UTC(2026, 0, 1)) } },
    perConnectionBps: 2 * MiB
  }))
  const r = rig = track(await makeRig())
  const url = new URL(s.url + path)
  const key = urlIdentity(url).key
  const h = await blob(r, url, stoppedOpts)
  await until(async () => {
    const p = await r.store.getPartial(key)
    return p !== undefined && PieceBitmap.fromBase64(STOPPED_SIZE / STOPPED_PIECE, p.bitmap).done >= pieces
  })
  h.release()
  await r.restart()
  return { r, s, url, key }
}

describe('resume, redirects, odd upstreams', () => {
  it('a download stopped midway resumes after a restart, refetching only unfinished pieces', async () => {
    const SIZE = STOPPED_SIZE
    const PIECE = STOPPED_PIECE
    const { r, s: upstream, url, key } = await stoppedMidway('/r.bin', 1, 6)
    const partial = await r.store.getPartial(key)
    expect(partial).toBeDefined()
    // Stopped cleanly: the file was synced before the entry said so (it survives a reboot).
    expect(partial?.synced).toBe(true)
    const done = PieceBitmap.fromBase64(SIZE / PIECE, partial?.bitmap ?? '').done
    expect(done).toBeGreaterThanOrEqual(6)
    const before = upstream.stats.bytesSent
    const again = await blob(r, url, stoppedOpts)
    expect((await sha256Of(again.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 1))
    again.release()
    const refetched = upstream.stats.bytesSent - before
    // Only the pieces not marked done come again (plus a little in-flight slack).
    expect(refetched).toBeLessThanOrEqual(SIZE - done * PIECE + 4 * PIECE)
    await until(() => r.store.stats().file_count === 1)
    expect(await r.store.getPartial(key)).toBeUndefined()
  })

  for (const change of [{ name: 'shrank (the resumed range is past its end: 416)', size: MiB + 5 }, { name: 'grew (the resumed range is of another version)', size: 5 * MiB + 3 }]) {
    it(`a download stopped midway whose file ${change.name} upstream meanwhile gets the new file whole`, async () => {
      // Pieces past the new end are on disk, so a resumed download starts beyond it.
      const { r, s: upstream, url, key } = await stoppedMidway('/g.bin', 3, 8)
      upstream.setFile('/g.bin', { size: change.size, seed: 4, lastModified: new Date(Date.UTC(2026, 1, 1)) })
      const again = await blob(r, url, stoppedOpts)
      // The file as it is now, whole, for the very next client: no old byte kept, no failed transfer.
      expect(again.meta.size).toBe(change.size)
      expect((await sha256Of(again.open(0, change.size))).hex).toBe(generatedSha256(change.size, 4))
      again.release()
      await until(() => r.store.stats().file_count === 1)
      expect((await r.store.lookup(key))?.entry.digest).toBe(generatedSha256(change.size, 4))
    })
  }

  it('keyed by final URL (the default), a restarted download goes on at its first missing byte, and a hit asks little', async () => {
    const SIZE = 8 * MiB
    const PIECE = MiB
    const opts = { chunkSize: PIECE, concurrency: 2, keyByFinalUrl: true }
    const ranges: string[] = []
    server = track(await startFileServer({
      files: { '/f.bin': { size: SIZE, seed: 2 } },
      perConnectionBps: 2 * MiB,
      onRequest: (req) => { ranges.push(req.headers.range ?? 'whole'); return false }
    }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/f.bin')
    const key = urlIdentity(url).key
    const h = await rig.fetcher.acquire(urlIdentity(url), { url }, opts)
    if (h.kind !== 'blob') throw new Error(`expected a blob, got ${h.kind}`)
    await until(async () => {
      const final = await rig?.store.getFinal(key)
      const p = final === undefined ? undefined : await rig?.store.getPartial(final.key)
      return p !== undefined && PieceBitmap.fromBase64(SIZE / PIECE, p.bitmap).done >= 2
    })
    h.release()
    await rig.restart()
    const final = await rig.store.getFinal(key)
    const partial = final === undefined ? undefined : await rig.store.getPartial(final.key)
    expect(partial).toBeDefined()
    ranges.length = 0
    const again = await rig.fetcher.acquire(urlIdentity(url), { url }, opts)
    if (again.kind !== 'blob') throw new Error(`expected a blob, got ${again.kind}`)
    expect((await sha256Of(again.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 2))
    again.release()
    // Piece 0 was on disk: nothing asks for it again.
    expect(ranges.length).toBeGreaterThan(0)
    expect(ranges.some(r => r.startsWith('bytes=0-'))).toBe(false)
    await until(() => rig?.store.stats().file_count === 1)

    // After another restart, the cached file is checked with a short range, not a whole piece.
    await rig.restart()
    ranges.length = 0
    const hit = await rig.fetcher.acquire(urlIdentity(url), { url }, opts)
    if (hit.kind !== 'blob') throw new Error(`expected a blob, got ${hit.kind}`)
    hit.release()
    expect(ranges).toEqual([`bytes=0-${LEARNING_RANGE - 1}`])
  })

  it('follows redirects to signed URLs, re-resolves them when they expire, and keys by the original URL', async () => {
    const SIZE = 3 * MiB
    server = track(await startFileServer({ files: { '/s.bin': { size: SIZE, seed: 2 } }, perConnectionBps: 2 * MiB, redirect: { ttlMs: 400 } }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/s.bin')
    const h = await blob(rig, url, { chunkSize: 256 * 1024, concurrency: 2 })
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 2))
    h.release()
    expect(server.stats.expired).toBeGreaterThan(0)
    expect(server.stats.redirects).toBeGreaterThan(1)
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 1.05)
    await until(() => rig?.store.stats().file_count === 1)
    expect(await rig.store.lookup(urlIdentity(url).key)).toBeDefined()
  })

  it('an upstream without Range support is fetched with one streaming GET', async () => {
    const SIZE = 1 * MiB + 5
    server = track(await startFileServer({ files: { '/n.bin': { size: SIZE, seed: 3 } }, ranges: false }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/n.bin')
    const h = await blob(rig, url, { chunkSize: 64 * 1024, concurrency: 8 })
    expect(h.meta.size).toBe(SIZE)
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 3))
    h.release()
    expect(server.stats.requests).toBe(1)
    await until(() => rig?.store.stats().file_count === 1)
  })

  it('without Range support, a reader waiting far ahead does not make the file be read again from its start', async () => {
    const SIZE = 8 * MiB
    server = track(await startFileServer({ files: { '/m.bin': { size: SIZE, seed: 7 } }, ranges: false, aggregateBps: 16 * MiB }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/m.bin')
    const whole = await blob(rig, url, { chunkSize: 64 * 1024, concurrency: 8 })
    const wholeSha = sha256Of(whole.open(0, SIZE))
    await new Promise(resolve => setTimeout(resolve, 100))
    const ahead = await blob(rig, url, { chunkSize: 64 * 1024, concurrency: 8, hint: 6 * MiB })
    const part = await sha256Of(ahead.open(6 * MiB, 6 * MiB + 1000))
    expect(part.bytes).toBe(1000)
    expect((await wholeSha).hex).toBe(generatedSha256(SIZE, 7))
    whole.release()
    ahead.release()
    expect(server.stats.requests).toBe(1)
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 1.02)
  })

  it('with one connection, a reader far ahead gets its range and the download still completes', async () => {
    const SIZE = 12 * MiB
    server = track(await startFileServer({ files: { '/k.bin': { size: SIZE, seed: 8 } }, perConnectionBps: 16 * MiB }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/k.bin')
    const whole = await blob(rig, url, { chunkSize: MiB, concurrency: 1 })
    const wholeSha = sha256Of(whole.open(0, SIZE))
    await new Promise(resolve => setTimeout(resolve, 150))
    const ahead = await blob(rig, url, { chunkSize: MiB, concurrency: 1, hint: 8_400_000 })
    expect((await sha256Of(ahead.open(8_400_000, 8_500_000))).bytes).toBe(100_000)
    ahead.release()
    expect((await wholeSha).hex).toBe(generatedSha256(SIZE, 8))
    whole.release()
    await until(() => rig?.store.stats().file_count === 1)
  })

  it('a connection cut mid-piece resumes at its last byte', async () => {
    const SIZE = 2 * MiB
    server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 4 } }, faults: { failAfterBytes: 300_000, failTimes: 3, failMode: 'close' } }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/f.bin')
    const h = await blob(rig, url, { chunkSize: 512 * 1024, concurrency: 2 })
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 4))
    h.release()
    expect(server.stats.failed).toBeGreaterThanOrEqual(2)
    // Restarting cut pieces from their start would cost 3 × 300 kB more than this.
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 1.1)
    // a resumed request starts where the cut one stopped, not at a piece boundary
    const starts = server.stats.rangeHeaders.map(r => Number(/^bytes=(\d+)-/.exec(r)?.[1] ?? 0))
    expect(starts.some(s => s % (512 * 1024) !== 0)).toBe(true)
  })

  it('a connection that brought bytes before it broke resumes at once; backoff waits only after no progress', async () => {
    const SIZE = 2 * MiB
    server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 6 } }, faults: { failAfterBytes: 200_000, failTimes: 4, failMode: 'close' } }))
    // A first backoff of 5 s: one wait would show.
    rig = track(await makeRig({}, { retryBaseMs: 5_000 }))
    const url = new URL(server.url + '/f.bin')
    const started = Date.now()
    const h = await blob(rig, url, { chunkSize: 4 * MiB, concurrency: 1 })
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 6))
    h.release()
    expect(server.stats.failed).toBe(4)
    expect(Date.now() - started).toBeLessThan(4_000)
  })

  it('an upstream 404 is handed back as such, nothing is cached', async () => {
    server = track(await startFileServer({ files: {} }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/none.bin')
    const a = await rig.fetcher.acquire(urlIdentity(url), { url }, {})
    expect(a.kind).toBe('upstream-response')
    if (a.kind === 'upstream-response') expect(a.status).toBe(404)
    expect(rig.store.stats().file_count).toBe(0)
    expect(rig.fetcher.activeDownloads()).toEqual([])
  })
})
