import { describe, expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'

const SIZE = 5 * 1024 * 1024 + 123
let server: FileServer | undefined
let rig: Rig | undefined

const track = closedAfterEach()

describe('fetcher: cold and warm', () => {
  it('downloads in parallel pieces, streams correct bytes, then serves from cache', async () => {
    server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 1 } } }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/f.bin')
    const opts = { chunkSize: 256 * 1024, concurrency: 4 }
    const a = await rig.fetcher.acquire(urlIdentity(url), { url }, opts)
    expect(a.kind).toBe('blob')
    if (a.kind !== 'blob') return
    expect(a.from).toBe('download')
    expect(a.meta.size).toBe(SIZE)
    const got = await sha256Of(a.open(0, SIZE))
    a.release()
    expect(got.bytes).toBe(SIZE)
    expect(got.hex).toBe(generatedSha256(SIZE, 1))
    expect(server.stats.rangeRequests).toBeGreaterThan(4)
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 1.02)
    // committed: a second acquire is a cache hit
    await until(() => rig?.store.stats().file_count === 1)
    const b = await rig.fetcher.acquire(urlIdentity(url), { url }, opts)
    if (b.kind !== 'blob') throw new Error('expected blob')
    expect(b.from).toBe('cache')
    expect(b.meta.etag).toBe(a.meta.etag)
    const again = await sha256Of(b.open(1000, 2000))
    b.release()
    expect(again.bytes).toBe(1000)
    expect(rig.store.stats()).toMatchObject({ hits: 1, misses: 1, file_count: 1, total_size_bytes: SIZE })
  })

  it('with writes on the thread pool (as after a blocked write) pieces end cleanly and connections are reused', async () => {
    server = track(await startFileServer({ files: { '/t.bin': { size: SIZE, seed: 3 } }, perConnectionBps: 8 * 1024 * 1024 }))
    rig = track(await makeRig({}, { syncWrites: false }))
    const url = new URL(server.url + '/t.bin')
    const a = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 256 * 1024, concurrency: 3 })
    if (a.kind !== 'blob') throw new Error('expected blob')
    const got = await sha256Of(a.open(0, SIZE))
    a.release()
    expect(got.hex).toBe(generatedSha256(SIZE, 3))
    // 21 pieces over 3 connections (plus up to 2 short-lived urgent ones): bodies that delivered
    // everything are not cut, so sockets are kept rather than opened per piece.
    expect(server.stats.connections).toBeLessThanOrEqual(6)
    await until(() => rig?.store.stats().file_count === 1)
  })
})
