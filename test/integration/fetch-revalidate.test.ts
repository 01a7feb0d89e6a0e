import { once } from 'node:events'
import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer, FileServerOptions } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import type { Acquired, AcquireOptions, BlobHandle } from '../../node/fetch/fetcher.ts'
import { compareWithCached } from '../../node/fetch/revalidate.ts'
import { UpstreamUnreachableError } from '../../node/errors.ts'
import type { SourceResponse } from '../../node/fetch/upstream-source.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'

const SIZE = 3 * 1024 * 1024 + 5
const track = closedAfterEach()

function blob (a: Acquired): BlobHandle {
  if (a.kind !== 'blob') throw new Error(`expected a blob, got upstream ${a.status}`)
  return a
}

/** Acquires the file, reads it whole; its source and sha256. */
async function fetchOnce (rig: Rig, url: URL, options: AcquireOptions): Promise<{ from: string, sha256: string, confirmedAt: number | undefined, stale: boolean }> {
  const b = blob(await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4, ...options }))
  try {
    const got = await sha256Of(b.open(0, b.meta.size as number))
    return { from: b.from, sha256: got.hex, confirmedAt: b.confirmedAt, stale: b.stale === true }
  } finally {
    b.release()
  }
}

/** A file server with `path` (seed 1), a rig, and the file fetched once and committed. */
async function cachedFile (path: string, serverOptions: Partial<FileServerOptions> = {}): Promise<{ server: FileServer, rig: Rig, url: URL }> {
  const server = track(await startFileServer({ files: { [path]: { size: SIZE, seed: 1 } }, ...serverOptions }))
  const rig = track(await makeRig())
  const url = new URL(server.url + path)
  expect((await fetchOnce(rig, url, serverOptions.redirect === true ? { keyByFinalUrl: true } : {})).sha256).toBe(generatedSha256(SIZE, 1))
  await until(() => rig.store.stats().file_count === 1)
  return { server, rig, url }
}

describe('files cached by their URL are checked with the upstream once their confirmation is old', () => {
  it('unchanged: served from the cache after a 1-byte check, which confirms it again', async () => {
    const { server, rig, url } = await cachedFile('/f.bin')
    const sent = server.stats.bytesSent
    const first = await fetchOnce(rig, url, { revalidateAfterMs: 0 })
    expect(first.from).toBe('cache')
    await new Promise(resolve => setTimeout(resolve, 5))
    const second = await fetchOnce(rig, url, { revalidateAfterMs: 0 })
    expect(second.from).toBe('cache')
    expect(second.confirmedAt).toBeGreaterThan(first.confirmedAt as number)
    expect(server.stats.bytesSent - sent).toBe(2)
  })

  it('changed upstream (a new ETag at the same URL): fetched again, and the new bytes are cached', async () => {
    const { server, rig, url } = await cachedFile('/latest.bin')
    server.setFile('/latest.bin', { size: SIZE, seed: 2 })
    const fresh = await fetchOnce(rig, url, { revalidateAfterMs: 0 })
    expect(fresh.from).toBe('download')
    expect(fresh.sha256).toBe(generatedSha256(SIZE, 2))
    // The copy found changed was not served: a miss, not a hit as well.
    expect(rig.store.stats()).toMatchObject({ hits: 0, misses: 2 })
    await until(() => rig.store.stats().file_count === 2)
    const after = await fetchOnce(rig, url, { revalidateAfterMs: 60_000 })
    expect(after.from).toBe('cache')
    expect(after.sha256).toBe(generatedSha256(SIZE, 2))
    expect(rig.store.stats()).toMatchObject({ hits: 1, misses: 2 })
  })

  it('gone upstream (404): the client gets the upstream\'s answer, not the cached copy', async () => {
    const { server, rig, url } = await cachedFile('/old.bin')
    server.deleteFile('/old.bin')
    const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4, revalidateAfterMs: 0 })
    expect(got).toMatchObject({ kind: 'upstream-response', status: 404 })
  })

  it('made private upstream (403 to this client): the client gets the upstream\'s answer, and the cached copy again once it is public again', async () => {
    const { server, rig, url } = await cachedFile('/private.bin')
    server.configure({ status: { '/private.bin': 403 } })
    const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4, revalidateAfterMs: 0 })
    expect(got).toMatchObject({ kind: 'upstream-response', status: 403 })
    server.configure({ status: {} })
    const sent = server.stats.bytesSent
    expect(await fetchOnce(rig, url, { revalidateAfterMs: 0 })).toMatchObject({ from: 'cache', sha256: generatedSha256(SIZE, 1) })
    expect(server.stats.bytesSent - sent).toBe(1)
  })

  it('not asked while the confirmation is recent, nor ever without a limit', async () => {
    const { server, rig, url } = await cachedFile('/f.bin')
    server.setFile('/f.bin', { size: SIZE, seed: 3 })
    const requests = server.stats.requests
    expect((await fetchOnce(rig, url, { revalidateAfterMs: 60_000 })).sha256).toBe(generatedSha256(SIZE, 1))
    expect((await fetchOnce(rig, url, {})).sha256).toBe(generatedSha256(SIZE, 1))
    expect(server.stats.requests).toBe(requests)
  })

  it('upstream down: the cached copy is served, and not held up by the check again for a while', async () => {
    const { server, rig, url } = await cachedFile('/f.bin')
    server.configure({ status: { '/f.bin': 503 } })
    const stale = await fetchOnce(rig, url, { revalidateAfterMs: 0 })
    expect(stale).toMatchObject({ from: 'cache', sha256: generatedSha256(SIZE, 1) })
    const requests = server.stats.requests
    expect((await fetchOnce(rig, url, { revalidateAfterMs: 0 })).from).toBe('cache')
    expect(server.stats.requests).toBe(requests)
  })

  it('upstream not answering: the cached copies are served, and no other file of that origin waits on a check for a while', async () => {
    const server = await startFileServer({ files: { '/a.bin': { size: SIZE, seed: 1 }, '/b.bin': { size: SIZE, seed: 2 } } })
    const rig = track(await makeRig())
    const a = new URL(server.url + '/a.bin')
    const b = new URL(server.url + '/b.bin')
    await fetchOnce(rig, a, {})
    await fetchOnce(rig, b, {})
    await until(() => rig.store.stats().file_count === 2)
    // The origin now takes connections and drops them at once.
    await server.close()
    let connections = 0
    const dropper = createServer(socket => { connections++; socket.destroy() })
    dropper.listen(Number(a.port), '127.0.0.1')
    await once(dropper, 'listening')
    track({ close: async () => { await new Promise(resolve => dropper.close(resolve)) } })
    expect(await fetchOnce(rig, a, { revalidateAfterMs: 0 })).toMatchObject({ from: 'cache', sha256: generatedSha256(SIZE, 1) })
    const tried = connections
    expect(tried).toBeGreaterThan(0)
    expect(await fetchOnce(rig, b, { revalidateAfterMs: 0 })).toMatchObject({ from: 'cache', sha256: generatedSha256(SIZE, 2) })
    expect(connections).toBe(tried)
  })

  it('an upstream taken as away (by any part of the node) is not asked about its cached files meanwhile', async () => {
    const { server, rig, url } = await cachedFile('/f.bin')
    rig.away.failed(url.origin, new UpstreamUnreachableError())
    const requests = server.stats.requests
    expect(await fetchOnce(rig, url, { revalidateAfterMs: 0 })).toMatchObject({ from: 'cache', sha256: generatedSha256(SIZE, 1) })
    expect(server.stats.requests).toBe(requests)
    // Once it answers again, the check is made.
    rig.away.answered(url.origin)
    expect((await fetchOnce(rig, url, { revalidateAfterMs: 0 })).from).toBe('cache')
    expect(server.stats.requests).toBe(requests + 1)
  })

  it('a check that got no answer holds no later check once the upstream answers again', async () => {
    const server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 1 }, '/g.bin': { size: SIZE, seed: 3 } } }))
    const rig = track(await makeRig())
    const f = new URL(server.url + '/f.bin')
    await fetchOnce(rig, f, {})
    await until(() => rig.store.stats().file_count === 1)
    // Every request's connection is dropped before an answer (kept-alive ones too).
    server.configure({ onRequest: (_req, res) => { res.socket?.destroy(); return true } })
    expect(await fetchOnce(rig, f, { revalidateAfterMs: 0 })).toMatchObject({ from: 'cache', stale: true, sha256: generatedSha256(SIZE, 1) })
    expect(rig.away.isAway(f.origin)).toBe(true)
    server.configure({ onRequest: undefined })
    // Another file of that origin downloads: the upstream answers again.
    expect(await fetchOnce(rig, new URL(server.url + '/g.bin'), {})).toMatchObject({ from: 'download', sha256: generatedSha256(SIZE, 3) })
    expect(rig.away.isAway(f.origin)).toBe(false)
    server.setFile('/f.bin', { size: SIZE, seed: 2 })
    expect(await fetchOnce(rig, f, { revalidateAfterMs: 0 })).toMatchObject({ from: 'download', sha256: generatedSha256(SIZE, 2) })
  })

  it('a check answered with an error serves the cached copy marked stale; one not yet due is not marked', async () => {
    const { server, rig, url } = await cachedFile('/busy.bin')
    server.configure({ status: { '/busy.bin': 503 } })
    expect(await fetchOnce(rig, url, { revalidateAfterMs: 0 })).toMatchObject({ from: 'cache', stale: true, sha256: generatedSha256(SIZE, 1) })
    expect(await fetchOnce(rig, url, { revalidateAfterMs: 60_000 })).toMatchObject({ from: 'cache', stale: false })
  })

  it('a slow upstream: the request is served the cached copy after 3 s, and the check\'s late answer holds for the next one', async () => {
    const { server, rig, url } = await cachedFile('/slow.bin')
    server.setFile('/slow.bin', { size: SIZE, seed: 2 })
    server.configure({ latencyMs: 4500 })
    const began = Date.now()
    expect(await fetchOnce(rig, url, { revalidateAfterMs: 0 })).toMatchObject({ from: 'cache', stale: true, sha256: generatedSha256(SIZE, 1) })
    expect(Date.now() - began).toBeLessThan(4500)
    // The check's answer came after all (and ended the away time it began).
    await until(() => !rig.away.isAway(url.origin), 10_000)
    server.configure({ latencyMs: 0 })
    expect(await fetchOnce(rig, url, { revalidateAfterMs: 0 })).toMatchObject({ from: 'download', sha256: generatedSha256(SIZE, 2) })
  })

  it('a check the upstream does not answer in time takes it as away', async () => {
    const { server, rig, url } = await cachedFile('/f.bin')
    // Connections are taken and never answered.
    server.configure({ onRequest: () => true })
    expect((await fetchOnce(rig, url, { revalidateAfterMs: 0 })).from).toBe('cache')
    expect(rig.away.isAway(url.origin)).toBe(true)
  })

  it('keyed by the final URL, the first range in hand decides: a changed file there is fetched again', async () => {
    const server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 1 } }, redirect: true }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/f.bin')
    const opts = { keyByFinalUrl: true }
    expect((await fetchOnce(rig, url, opts)).sha256).toBe(generatedSha256(SIZE, 1))
    await until(() => rig.store.stats().file_count === 1)
    // A new fetcher has not learnt where the URL leads: it asks, and the answer shows a new file.
    await rig.restart()
    server.setFile('/f.bin', { size: SIZE, seed: 4 })
    const fresh = await fetchOnce(rig, url, opts)
    expect(fresh).toMatchObject({ from: 'download', sha256: generatedSha256(SIZE, 4) })
    await rig.restart()
    expect(await fetchOnce(rig, url, opts)).toMatchObject({ from: 'cache', sha256: generatedSha256(SIZE, 4) })
  })
})

describe('comparing an upstream answer with the cached file', () => {
  const res = (status: number, headers: Record<string, string>, total: number | null = null): SourceResponse => ({
    status, headers, body: null as never, url: new URL('http://u/f'), contentRange: total === null ? null : { start: 0, end: 0, total }
  })
  const cached = { size: 10, validator: { etag: '"a"', lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' } }

  it('goes by ETag (weak or strong), then Last-Modified, and a different size is always a change', () => {
    expect(compareWithCached(cached, res(206, { etag: '"a"' }, 10))).toBe('same')
    expect(compareWithCached(cached, res(206, { etag: 'W/"a"' }, 10))).toBe('same')
    expect(compareWithCached(cached, res(206, { etag: '"b"' }, 10))).toBe('changed')
    expect(compareWithCached(cached, res(206, { etag: '"a"' }, 11))).toBe('changed')
    expect(compareWithCached(cached, res(200, { 'content-length': '10', 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' }))).toBe('same')
    expect(compareWithCached(cached, res(200, { 'content-length': '10', 'last-modified': 'Tue, 02 Jan 2024 00:00:00 GMT' }))).toBe('changed')
    expect(compareWithCached({ size: 10, validator: { etag: null, lastModified: null } }, res(206, {}, 10))).toBe('same')
    // Gone is a change; a status that is no answer about the file says nothing.
    expect(compareWithCached(cached, res(404, {}))).toBe('changed')
    expect(compareWithCached(cached, res(410, {}))).toBe('changed')
    expect(compareWithCached(cached, res(503, {}))).toBe('unknown')
    // Refused: the file is not for this client (any more); a rate limit says nothing about it.
    expect(compareWithCached(cached, res(403, {}))).toBe('changed')
    expect(compareWithCached(cached, res(401, {}))).toBe('changed')
    expect(compareWithCached(cached, res(403, { 'x-ratelimit-remaining': '0' }))).toBe('unknown')
    expect(compareWithCached(cached, res(403, { 'retry-after': '60' }))).toBe('unknown')
    expect(compareWithCached(cached, res(429, {}))).toBe('unknown')
    expect(compareWithCached(cached, res(200, {}))).toBe('unknown')
  })
})
