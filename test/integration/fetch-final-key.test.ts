import { describe, expect, it, vi } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import type { Acquired, BlobHandle } from '../../node/fetch/fetcher.ts'
import { canonicalUrl, urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 2 * MiB + 99
const OPTS = { chunkSize: 256 * 1024, concurrency: 2, keyByFinalUrl: true }

let server: FileServer | undefined
let rig: Rig | undefined

const track = closedAfterEach()

/** Origin: /alias-*.bin → 302 /v1.bin → 302 signed CDN URL (sig, exp), as release "latest" links do. */
async function start (): Promise<FileServer> {
  return await startFileServer({
    files: { '/v1.bin': { size: SIZE, seed: 21 } },
    perConnectionBps: 4 * MiB,
    redirect: { ttlMs: 60_000 },
    onRequest: (req, res, info) => {
      if (info.listener !== 'origin' || !/^\/alias-[a-z]+\.bin$/.test(info.path)) return false
      res.writeHead(302, { location: '/v1.bin', 'content-length': '0' }).end()
      return true
    }
  })
}

function blob (a: Acquired): BlobHandle {
  if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
  return a
}

describe('cache_key_source: final', () => {
  it('keys by the final URL without its signature: two aliases of one file share one cached blob', async () => {
    server = track(await start())
    rig = track(await makeRig())
    const a = new URL(`${server.url}/alias-a.bin`)
    const h = blob(await rig.fetcher.acquire(urlIdentity(a), { url: a }, OPTS))
    expect(h.from).toBe('download')
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 21))
    h.release()
    await until(() => rig?.store.stats().file_count === 1)
    const finalKey = 'url:' + canonicalUrl(`${server.cdnUrl}/v1.bin`)
    expect(await rig.store.lookup(finalKey)).toBeDefined()
    expect(await rig.store.lookup(urlIdentity(a).key)).toBeUndefined()

    const sentBefore = server.stats.bytesSent
    const b = new URL(`${server.url}/alias-b.bin`)
    const hb = blob(await rig.fetcher.acquire(urlIdentity(b), { url: b }, OPTS))
    expect(hb.from).toBe('cache')
    expect((await sha256Of(hb.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 21))
    hb.release()
    // Only the redirect resolution's first range went out (and was dropped early).
    expect(server.stats.bytesSent - sentBefore).toBeLessThan(SIZE / 2)
    expect(rig.store.stats().file_count).toBe(1)

    // The redirect target just learnt is trusted for a while: the next hit asks nothing upstream,
    // and still answers with the upstream gone.
    const requests = server.stats.requests
    await server.close()
    const again = blob(await rig.fetcher.acquire(urlIdentity(b), { url: b }, OPTS))
    expect(again.from).toBe('cache')
    again.release()
    expect(server.stats.requests).toBe(requests)
  })

  it('concurrent callers for one URL resolve it once and share the download', async () => {
    server = track(await start())
    rig = track(await makeRig())
    const a = new URL(`${server.url}/alias-c.bin`)
    const hs = (await Promise.all([1, 2, 3].map(async () => await rig?.fetcher.acquire(urlIdentity(a), { url: a }, OPTS)))).map(x => blob(x as Acquired))
    const shas = await Promise.all(hs.map(async h => (await sha256Of(h.open(0, SIZE))).hex))
    for (const h of hs) h.release()
    expect(shas).toEqual([1, 2, 3].map(() => generatedSha256(SIZE, 21)))
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 1.05)
  })

  it('several URLs leading to one final URL, asked at once, share one download', async () => {
    server = track(await start())
    rig = track(await makeRig())
    const urls = ['g', 'h', 'i', 'j'].map(x => new URL(`${server?.url ?? ''}/alias-${x}.bin`))
    // A slow index lookup: every alias learns the final URL before any of them starts its download.
    const lookup = rig.store.lookup.bind(rig.store)
    vi.spyOn(rig.store, 'lookup').mockImplementation(async (key: string) => {
      await new Promise(resolve => setTimeout(resolve, 100))
      return await lookup(key)
    })
    const hs = await Promise.all(urls.map(async u => blob(await (rig as Rig).fetcher.acquire(urlIdentity(u), { url: u }, OPTS))))
    const shas = await Promise.all(hs.map(async h => (await sha256Of(h.open(0, SIZE))).hex))
    for (const h of hs) h.release()
    expect(shas).toEqual(urls.map(() => generatedSha256(SIZE, 21)))
    await until(() => rig?.store.stats().file_count === 1 && rig.fetcher.activeDownloads().length === 0)
    // Each alias's first range learns where it leads (short); the file itself comes once.
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 1.1 + 4 * OPTS.chunkSize)
  })

  it('after a restart with the upstream down, the URL still serves what it last led to', async () => {
    server = track(await start())
    rig = track(await makeRig())
    const a = new URL(`${server.url}/alias-f.bin`)
    const h = blob(await rig.fetcher.acquire(urlIdentity(a), { url: a }, OPTS))
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 21))
    h.release()
    await until(() => rig?.store.stats().file_count === 1)
    await rig.restart()
    await server.close()
    const again = blob(await rig.fetcher.acquire(urlIdentity(a), { url: a }, OPTS))
    expect(again.from).toBe('cache')
    expect((await sha256Of(again.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 21))
    again.release()
  })

  it('once the upstream failed to answer, a URL whose last file is cached is served without waiting again', async () => {
    let hung = false
    server = track(await startFileServer({
      files: { '/a.bin': { size: SIZE, seed: 1 }, '/b.bin': { size: SIZE, seed: 2 }, '/c.bin': { size: SIZE, seed: 3 } },
      onRequest: () => hung
    }))
    rig = track(await makeRig())
    const url = (name: string): URL => new URL(`${server?.url ?? ''}/${name}.bin`)
    for (const name of ['a', 'b']) blob(await rig.fetcher.acquire(urlIdentity(url(name)), { url: url(name) }, OPTS)).release()
    await until(() => rig?.store.stats().file_count === 2)
    // After a restart nothing is fresh: each URL would be asked where it leads now.
    await rig.restart({ retryBaseMs: 20, headersTimeoutMs: 1000 })
    hung = true
    const timed = async (name: string): Promise<{ ms: number, got: BlobHandle }> => {
      const t0 = Date.now()
      const got = blob(await (rig as Rig).fetcher.acquire(urlIdentity(url(name)), { url: url(name) }, OPTS))
      return { ms: Date.now() - t0, got }
    }
    const first = await timed('a')
    expect(first.ms).toBeGreaterThanOrEqual(900)
    expect((await sha256Of(first.got.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 1))
    first.got.release()
    const second = await timed('b')
    expect(second.ms).toBeLessThan(500)
    expect((await sha256Of(second.got.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 2))
    second.got.release()
    // A URL with nothing cached still asks the upstream, and its answer ends the away time.
    hung = false
    const third = await timed('c')
    expect((await sha256Of(third.got.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 3))
    third.got.release()
    const before = server.stats.requests
    blob(await rig.fetcher.acquire(urlIdentity(url('b')), { url: url('b') }, OPTS)).release()
    expect(server.stats.requests).toBeGreaterThan(before)
  })

  it('an empty file is cached like any other: hits ask nothing upstream and survive it going down', async () => {
    server = track(await startFileServer({ files: { '/empty.bin': { size: 0, seed: 1 } }, redirect: { ttlMs: 60_000 } }))
    rig = track(await makeRig())
    const a = new URL(`${server.url}/empty.bin`)
    const h = blob(await rig.fetcher.acquire(urlIdentity(a), { url: a }, OPTS))
    expect((await sha256Of(h.open(0, 0))).bytes).toBe(0)
    h.release()
    await until(() => rig?.store.stats().file_count === 1)
    const requests = server.stats.requests
    const hit = blob(await rig.fetcher.acquire(urlIdentity(a), { url: a }, OPTS))
    expect(hit.from).toBe('cache')
    hit.release()
    expect(server.stats.requests).toBe(requests)
    await rig.restart()
    await server.close()
    const offline = blob(await rig.fetcher.acquire(urlIdentity(a), { url: a }, OPTS))
    expect(offline.from).toBe('cache')
    offline.release()
  })

  it('without keyByFinalUrl the original URL stays the key', async () => {
    server = track(await start())
    rig = track(await makeRig())
    const a = new URL(`${server.url}/alias-d.bin`)
    const h = blob(await rig.fetcher.acquire(urlIdentity(a), { url: a }, { ...OPTS, keyByFinalUrl: false }))
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 21))
    h.release()
    await until(() => rig?.store.stats().file_count === 1)
    expect(await rig.store.lookup(urlIdentity(a).key)).toBeDefined()
  })
})
