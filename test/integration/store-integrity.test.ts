import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, open, readdir, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { GeneratedContent, generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import type { BlobHandle } from '../../node/fetch/fetcher.ts'
import { digestIdentity, urlIdentity } from '../../node/fetch/identity.ts'
import type { BlobIdentity } from '../../node/fetch/identity.ts'
import { BlobStore } from '../../node/store/blob-store.ts'
import { IndexDb } from '../../node/store/index-db.ts'
import type { PartialEntry } from '../../node/store/index-db.ts'
import { PieceBitmap } from '../../node/store/partial.ts'
import { closedAfterEach, makeRig, sha256Of, silent, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'

const run = promisify(execFile)
const MiB = 1 << 20
const SIZE = 2 * MiB + 77
const OPTS = { chunkSize: 256 * 1024, concurrency: 4 }
let server: FileServer | undefined
let rig: Rig | undefined

const track = closedAfterEach()

async function blob (r: Rig, url: URL, id: BlobIdentity = urlIdentity(url), opts: object = OPTS): Promise<BlobHandle> {
  const a = await r.fetcher.acquire(id, { url }, opts)
  if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
  return a
}

async function files (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name))
  return out
}

/** A fresh rig whose store holds the generated file `name` (fetched whole, committed); its URL and digest. */
async function cachedFile (name: string, seed: number): Promise<{ r: Rig, url: URL, digest: string }> {
  server = track(await startFileServer({ files: { [name]: { size: SIZE, seed } } }))
  const r = rig = track(await makeRig())
  const url = new URL(server.url + name)
  const h = await blob(r, url)
  await sha256Of(h.open(0, SIZE))
  h.release()
  await until(() => r.store.stats().file_count === 1)
  return { r, url, digest: generatedSha256(SIZE, seed) }
}

/** Overwrites 8 bytes of a blob file in place. */
async function scribble (path: string): Promise<void> {
  const fh = await open(path, 'r+')
  await fh.write(Buffer.from('garbage!'), 0, 8, 1000)
  await fh.close()
}

/** The next client gets the file from a new download, with the right bytes. */
async function expectRefetched (r: Rig, url: URL, digest: string): Promise<void> {
  const again = await blob(r, url)
  expect(again.from).toBe('download')
  expect((await sha256Of(again.open(0, SIZE))).hex).toBe(digest)
  again.release()
}

describe('verification and integrity', () => {
  it('a digest mismatch aborts a streaming reader before the final byte and caches nothing', async () => {
    server = track(await startFileServer({ files: { '/m.bin': { size: SIZE, seed: 1 } }, perConnectionBps: 4 * MiB }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/m.bin')
    const h = await blob(rig, url, digestIdentity({ algorithm: 'sha256', hex: 'ab'.repeat(32) }))
    let received = 0
    const s = h.open(0, SIZE)
    s.on('data', (c: Buffer) => { received += c.length })
    const err = await new Promise<unknown>((resolve) => { s.once('error', resolve); s.once('end', () => resolve(null)) })
    h.release()
    expect((err as { code?: string } | null)?.code).toBe('ERR_DIGEST_MISMATCH')
    expect(received).toBeLessThan(SIZE)
    await until(() => rig?.fetcher.activeDownloads().length === 0)
    expect(rig.store.stats().file_count).toBe(0)
    await until(async () => await rig?.store.getPartial(`sha256:${'ab'.repeat(32)}`) === undefined)
    await until(async () => (await files(join(rig?.dir ?? '', 'tmp'))).length === 0)
  })

  it('a new download of a key waits for the discard of the failed one: no stale progress, its file not deleted under it', async () => {
    rig = track(await makeRig())
    const key = `sha256:${'cd'.repeat(32)}`
    const temp = rig.store.layout.tempPath(key)
    const entry = { url: 'http://x/', size: 10, pieceSize: 10, bitmap: 'AQ==', contentType: null, headers: {}, validator: { etag: '"e"', lastModified: null }, etag: '"e"', expectedDigest: null, startedAt: 1, updatedAt: 1 }
    await rig.store.putPartial(key, entry)
    const fh = await open(temp, 'w')
    await fh.close()
    // What a failed download does once it settled, and what the next download of the key does at once.
    const discard = rig.store.discardPartial(key)
    expect(await rig.store.getPartial(key)).toBeUndefined()
    await expect(stat(temp)).rejects.toMatchObject({ code: 'ENOENT' })
    await discard
  })

  it('writes to a key\'s progress entry land in the order they were issued (LevelDB may run them out of order)', async () => {
    rig = track(await makeRig())
    const key = `sha256:${'ce'.repeat(32)}`
    const entry = { url: 'http://x/', size: 10, pieceSize: 10, bitmap: 'AQ==', contentType: null, headers: {}, validator: { etag: '"e"', lastModified: null }, etag: '"e"', expectedDigest: null, startedAt: 1, updatedAt: 1 }
    // A save slow to reach the database, issued before the download failed and discarded its progress.
    const put = IndexDb.prototype.putPartial
    const slowPut = vi.spyOn(IndexDb.prototype, 'putPartial').mockImplementation(async function (this: IndexDb, k, e) {
      await new Promise(resolve => setTimeout(resolve, 30))
      await put.call(this, k, e)
    })
    try {
      const save = rig.store.putPartial(key, entry)
      await rig.store.discardPartial(key)
      await save
      expect(await rig.store.getPartial(key)).toBeUndefined()
      // The same for a commit, whose batch deletes the entry.
      const resave = rig.store.putPartial(key, entry)
      const temp = rig.store.layout.tempPath(key)
      const fh = await open(temp, 'w+')
      await fh.writeFile('0123456789')
      await rig.store.commit(key, { path: temp, fh }, { digest: 'f'.repeat(64), size: 10, contentType: null, headers: {}, validator: { etag: null, lastModified: null }, etag: '"f"', fetchedAt: 1 })
      await fh.close()
      await resave
      expect(await rig.store.getPartial(key)).toBeUndefined()
    } finally {
      slowPut.mockRestore()
    }
  })

  it('a progress entry whose temp file is gone starts the download afresh', async () => {
    server = track(await startFileServer({ files: { '/g.bin': { size: SIZE, seed: 5 } } }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/g.bin')
    const id = urlIdentity(url)
    const head = await fetch(url, { method: 'HEAD' })
    const etag = head.headers.get('etag') ?? ''
    const count = Math.ceil(SIZE / OPTS.chunkSize)
    const bitmap = new PieceBitmap(count)
    bitmap.set(0)
    await rig.store.putPartial(id.key, { url: url.href, size: SIZE, pieceSize: OPTS.chunkSize, bitmap: bitmap.toBase64(), contentType: null, headers: {}, validator: { etag, lastModified: null }, etag, expectedDigest: null, startedAt: 1, updatedAt: Date.now() })
    const h = await blob(rig, url, id)
    expect(await sha256Of(h.open(0, SIZE))).toEqual({ hex: generatedSha256(SIZE, 5), bytes: SIZE })
    h.release()
  })

  it('a matching digest is served and stored under its content address', async () => {
    server = track(await startFileServer({ files: { '/ok.bin': { size: SIZE, seed: 2 } } }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/ok.bin')
    const hex = generatedSha256(SIZE, 2)
    const h = await blob(rig, url, digestIdentity({ algorithm: 'sha256', hex }))
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(hex)
    h.release()
    await until(() => rig?.store.stats().file_count === 1)
    expect((await stat(rig.store.layout.blobPath(hex))).size).toBe(SIZE)
    // the same content asked for by digest from another URL is a hit
    const other = new URL(server.url + '/elsewhere.bin')
    const again = await blob(rig, other, digestIdentity({ algorithm: 'sha256', hex }))
    expect(again.from).toBe('cache')
    again.release()
  })

  it('a blob corrupted on disk is never served: it is dropped and fetched again', async () => {
    const { r, url, digest } = await cachedFile('/c.bin', 3)
    await scribble(r.store.layout.blobPath(digest))
    await expectRefetched(r, url, digest)
  })

  it('a blob file cut short is dropped and fetched again', async () => {
    const { r, url, digest } = await cachedFile('/s.bin', 14)
    await truncate(r.store.layout.blobPath(digest), SIZE - 1)
    await expectRefetched(r, url, digest)
  })

  it('a blob whose file was only touched is hashed again and stays a hit, its new times kept', async () => {
    const { r, url, digest } = await cachedFile('/u.bin', 15)
    const path = r.store.layout.blobPath(digest)
    const later = new Date(Date.now() + 60_000)
    await utimes(path, later, later)
    const hit = await blob(r, url)
    expect(hit.from).toBe('cache')
    expect((await sha256Of(hit.open(0, SIZE))).hex).toBe(digest)
    hit.release()
    // Kept: the next check finds the file as recorded and does not hash it again.
    const now = await stat(path)
    expect(await r.store.index.getBlob(digest)).toMatchObject({ mtimeMs: now.mtimeMs, ino: now.ino, ctimeMs: now.ctimeMs })
  })

  it('a blob rewritten in place with its times put back is never served either: its change time tells', async () => {
    const { r, url, digest } = await cachedFile('/t.bin', 12)
    const path = r.store.layout.blobPath(digest)
    const before = await stat(path, { bigint: true })
    await scribble(path)
    // To the nanosecond (utimes takes a double and would round them): size, inode and mtime as they were.
    await run('touch', ['-d', `@${before.mtimeNs / 1_000_000_000n}.${String(before.mtimeNs % 1_000_000_000n).padStart(9, '0')}`, path])
    const after = await stat(path, { bigint: true })
    expect([after.size, after.ino, after.mtimeNs]).toEqual([before.size, before.ino, before.mtimeNs])
    await expectRefetched(r, url, digest)
  })

  it('an index entry of an earlier version (no change time) is trusted as it was, and gets one', async () => {
    const { r, url, digest } = await cachedFile('/v.bin', 13)
    const { ctimeMs, ...old } = await r.store.index.getBlob(digest) ?? {}
    expect(ctimeMs).toBeTypeOf('number')
    await r.store.index.putBlob(digest, old as Parameters<IndexDb['putBlob']>[1])
    await r.restart()
    const hit = await blob(r, url)
    expect(hit.from).toBe('cache')
    hit.release()
    expect((await r.store.index.getBlob(digest))?.ctimeMs).toBe((await stat(r.store.layout.blobPath(digest))).ctimeMs)
  })

  it('a blob corrupted on disk while a client reads it is not served to the next one', async () => {
    const { r, url, digest } = await cachedFile('/e.bin', 6)
    const reading = await blob(r, url)
    expect(reading.from).toBe('cache')
    await scribble(r.store.layout.blobPath(digest))
    await expectRefetched(r, url, digest)
    reading.release()
  })

  it('an index another store holds open is not taken for damage: the second store refuses to start, the cache stays', async () => {
    server = track(await startFileServer({ files: { '/y.bin': { size: SIZE, seed: 12 } } }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/y.bin')
    const h = await blob(rig, url)
    await sha256Of(h.open(0, SIZE))
    h.release()
    await until(() => rig?.store.stats().file_count === 1)
    const second = new BlobStore({ logger: silent }, { dir: rig.dir, maxBytes: 1 << 30 })
    await expect(second.start()).rejects.toThrow(/in use by another aimirror node/)
    expect(await files(join(rig.dir, 'blobs'))).toHaveLength(1)
    const hit = await blob(rig, url)
    expect(hit.from).toBe('cache')
    hit.release()
  })

  it('a temp directory removed while the node runs is made again by the next download', async () => {
    server = track(await startFileServer({ files: { '/t.bin': { size: SIZE, seed: 4 } } }))
    rig = track(await makeRig())
    await rm(rig.store.layout.tmpDir, { recursive: true, force: true })
    const h = await blob(rig, new URL(server.url + '/t.bin'))
    expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 4))
    h.release()
  })

  it('a missing blob file is dropped from the index', async () => {
    server = track(await startFileServer({ files: { '/d.bin': { size: SIZE, seed: 4 } } }))
    rig = track(await makeRig())
    const url = new URL(server.url + '/d.bin')
    const h = await blob(rig, url)
    await sha256Of(h.open(0, SIZE))
    h.release()
    await until(() => rig?.store.stats().file_count === 1)
    const { rm } = await import('node:fs/promises')
    await rm(rig.store.layout.blobPath(generatedSha256(SIZE, 4)))
    expect(await rig.store.lookup(urlIdentity(url).key)).toBeUndefined()
    expect(rig.store.stats().file_count).toBe(0)
  })

  it('a file larger than the whole cache is passed through once and not cached', async () => {
    server = track(await startFileServer({ files: { '/big.bin': { size: SIZE, seed: 5 } } }))
    rig = track(await makeRig({ maxBytes: MiB }))
    const url = new URL(server.url + '/big.bin')
    const h = await blob(rig, url)
    expect(h.from).toBe('passthrough')
    expect(h.meta.size).toBe(SIZE)
    const stream = h.open(0, SIZE)
    // Listed as an active download while it streams.
    expect(rig.fetcher.activeDownloads()).toMatchObject([{ key: urlIdentity(url).key, size: SIZE, state: 'passthrough' }])
    expect((await sha256Of(stream)).hex).toBe(generatedSha256(SIZE, 5))
    h.release()
    await until(() => rig?.fetcher.activeDownloads().length === 0)
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 1.02)
    expect(rig.store.stats().file_count).toBe(0)
    expect(await files(join(rig.dir, 'tmp'))).toEqual([])
    expect(await files(join(rig.dir, 'blobs'))).toEqual([])
  })

  it('a file larger than the cache from an upstream that throttles each connection comes over several at once, in order', async () => {
    const size = 6 * MiB + 123
    server = track(await startFileServer({ files: { '/wide.bin': { size, seed: 12 } }, perConnectionBps: 4 * MiB }))
    rig = track(await makeRig({ maxBytes: MiB }))
    const url = new URL(server.url + '/wide.bin')
    const h = await blob(rig, url)
    expect(h.from).toBe('passthrough')
    expect((await sha256Of(h.open(0, size))).hex).toBe(generatedSha256(size, 12))
    const part = await sha256Of(h.open(MiB + 5, 4 * MiB + 9))
    h.release()
    const want = createHash('sha256')
    for (const c of new GeneratedContent(size, 12).chunks(MiB + 5, 4 * MiB + 8, 65536)) want.update(Buffer.from(await c))
    expect(part).toEqual({ hex: want.digest('hex'), bytes: 3 * MiB + 4 })
    // The rule's 4 connections, each range asked once.
    expect(server.stats.peakResponses).toBe(4)
    expect(server.stats.bytesSent).toBeLessThanOrEqual((size + 3 * MiB + 4) * 1.02)
    expect(rig.store.stats().file_count).toBe(0)
  })

  it('a file larger than the cache from a nearby upstream uses all of a wide rule\'s connections, in smaller ranges', async () => {
    const size = 24 * MiB + 7
    server = track(await startFileServer({ files: { '/wider.bin': { size, seed: 14 } }, perConnectionBps: 2 * MiB }))
    rig = track(await makeRig({ maxBytes: MiB }))
    const url = new URL(server.url + '/wider.bin')
    const h = await blob(rig, url, urlIdentity(url), { chunkSize: 256 * 1024, concurrency: 32 })
    expect(h.from).toBe('passthrough')
    expect((await sha256Of(h.open(0, size))).hex).toBe(generatedSha256(size, 14))
    h.release()
    // Up to 32 ranges at once (128 KiB each), not 16 of 1 MiB.
    expect(server.stats.peakResponses).toBeGreaterThan(16)
    expect(server.stats.peakResponses).toBeLessThanOrEqual(32)
    expect(server.stats.bytesSent).toBeLessThanOrEqual(size * 1.02)
  })

  it('a file larger than the cache read as recycled chunks (as the HTTP layer does): right bytes, connections broken mid-range', async () => {
    const size = 5 * MiB + 333
    server = track(await startFileServer({ files: { '/rc.bin': { size, seed: 15 } }, perConnectionBps: 8 * MiB, faults: { failAfterBytes: 100_000, failTimes: 4 } }))
    rig = track(await makeRig({ maxBytes: MiB }))
    const url = new URL(server.url + '/rc.bin')
    const h = await blob(rig, url, urlIdentity(url), { chunkSize: 256 * 1024, concurrency: 8 })
    expect(h.from).toBe('passthrough')
    const read = async (start: number, end: number): Promise<{ hex: string, bytes: number }> => {
      const chunks = h.chunks?.(start, end)
      if (chunks === undefined) throw new Error('no chunks')
      const hash = createHash('sha256')
      let bytes = 0
      try {
        for (let c = await chunks.next(); c !== null; c = await chunks.next()) {
          hash.update(c)
          bytes += c.length
          chunks.recycle(c)
        }
      } finally { chunks.close() }
      return { hex: hash.digest('hex'), bytes }
    }
    expect(await read(0, size)).toEqual({ hex: generatedSha256(size, 15), bytes: size })
    const want = createHash('sha256')
    for (const c of new GeneratedContent(size, 15).chunks(777, 3 * MiB - 1, 65536)) want.update(Buffer.from(await c))
    expect(await read(777, 3 * MiB)).toEqual({ hex: want.digest('hex'), bytes: 3 * MiB - 777 })
    h.release()
    await until(() => rig?.fetcher.activeDownloads().length === 0)
    expect(rig.store.stats().file_count).toBe(0)
  })

  it('a blob larger than the cache whose bytes do not match its digest: the whole stream fails before its last bytes', async () => {
    const size = 3 * MiB + 17
    server = track(await startFileServer({ files: { '/wrong.bin': { size, seed: 13 } } }))
    rig = track(await makeRig({ maxBytes: MiB }))
    const url = new URL(server.url + '/wrong.bin')
    const h = await blob(rig, url, digestIdentity({ algorithm: 'sha256', hex: 'ab'.repeat(32) }))
    expect(h.from).toBe('passthrough')
    let got = 0
    const read = (async () => { for await (const c of h.open(0, size)) got += (c as Buffer).length })()
    await expect(read).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' })
    expect(got).toBeLessThan(size)
    // A range of it has no digest to check (as with any Range request): it is served.
    expect((await sha256Of(h.open(5, 1005))).bytes).toBe(1000)
    h.release()
    // The right digest passes whole.
    const ok = await blob(rig, url, digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 13) }))
    expect((await sha256Of(ok.open(0, size))).hex).toBe(generatedSha256(size, 13))
    ok.release()
  })

  it('a file larger than the cache, asked by two clients at once with credentials: each gets it whole, the first response is not wasted', async () => {
    server = track(await startFileServer({
      files: { '/big2.bin': { size: SIZE, seed: 8 } },
      perConnectionBps: 8 * MiB,
      onRequest: (req, res) => {
        if (req.headers.authorization === 'Bearer t') return false
        res.writeHead(401, { 'content-length': '0' }).end()
        return true
      }
    }))
    rig = track(await makeRig({ maxBytes: MiB }))
    const url = new URL(server.url + '/big2.bin')
    const ask = async (): Promise<BlobHandle> => {
      const a = await rig?.fetcher.acquire(urlIdentity(url), { url, headers: { authorization: 'Bearer t' } }, OPTS)
      if (a?.kind !== 'blob') throw new Error(`expected a blob, got ${a?.kind}`)
      return a
    }
    const [h1, h2] = await Promise.all([ask(), ask()])
    const got = await Promise.all([h1, h2].map(async h => (await sha256Of(h.open(0, SIZE))).hex))
    h1.release()
    h2.release()
    expect(got).toEqual([generatedSha256(SIZE, 8), generatedSha256(SIZE, 8)])
    // The first response serves its caller; the other caller's stream is the only other full read.
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE * 2.05)
  })

  it('a file larger than the cache from an upstream without Range: a range of it is cut from the whole file', async () => {
    server = track(await startFileServer({ files: { '/big3.bin': { size: SIZE, seed: 9 } }, ranges: false }))
    rig = track(await makeRig({ maxBytes: MiB }))
    const url = new URL(server.url + '/big3.bin')
    const a = await rig.fetcher.acquire(urlIdentity(url), { url }, { ...OPTS, hint: 1000 })
    if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
    expect(a.from).toBe('passthrough')
    const part = await sha256Of(a.open(1000, 1000 + MiB))
    a.release()
    const whole = new GeneratedContent(SIZE, 9)
    const want = createHash('sha256')
    for (const c of whole.chunks(1000, 1000 + MiB - 1, 65536)) want.update(Buffer.from(await c))
    expect(part).toEqual({ hex: want.digest('hex'), bytes: MiB })
  })

  it('the cache stays within its budget: least recently used blobs are evicted', async () => {
    const fs: Record<string, { size: number, seed: number }> = {}
    for (let i = 0; i < 4; i++) fs[`/e${i}.bin`] = { size: MiB, seed: 10 + i }
    server = track(await startFileServer({ files: fs }))
    rig = track(await makeRig({ maxBytes: 3 * MiB }))
    for (let i = 0; i < 4; i++) {
      const url = new URL(`${server.url}/e${i}.bin`)
      const h = await blob(rig, url)
      await sha256Of(h.open(0, MiB))
      h.release()
      await until(() => rig?.fetcher.activeDownloads().length === 0)
    }
    const st = rig.store.stats()
    expect(st.total_size_bytes).toBeLessThanOrEqual(3 * MiB)
    expect(await rig.store.lookup(urlIdentity(new URL(`${server.url}/e0.bin`)).key)).toBeUndefined()
    expect(await rig.store.lookup(urlIdentity(new URL(`${server.url}/e3.bin`)).key)).toBeDefined()
  })

  it('the index entries of evicted blobs go too, not only when their key is asked again', async () => {
    const fs: Record<string, { size: number, seed: number }> = {}
    for (let i = 0; i < 4; i++) fs[`/k${i}.bin`] = { size: MiB, seed: 20 + i }
    server = track(await startFileServer({ files: fs }))
    rig = track(await makeRig({ maxBytes: 3 * MiB, partialSweepEveryMs: 100 }))
    for (let i = 0; i < 4; i++) {
      const h = await blob(rig, new URL(`${server.url}/k${i}.bin`))
      await sha256Of(h.open(0, MiB))
      h.release()
      await until(() => rig?.fetcher.activeDownloads().length === 0)
    }
    const key = (i: number): string => urlIdentity(new URL(`${server?.url ?? ''}/k${i}.bin`)).key
    // Where two URLs led: one long ago to a file no longer cached, one just now (its download may be under way).
    await rig.store.putFinal('url:http://gone.example/old', { key: 'url:http://gone.example/old-final', at: Date.now() - 7_200_000 })
    await rig.store.putFinal('url:http://gone.example/new', { key: 'url:http://gone.example/new-final', at: Date.now() })
    // Read from the index itself: a lookup would drop the entry on its way.
    await until(async () => await rig?.store.index.getKey(key(0)) === undefined && await rig?.store.getFinal('url:http://gone.example/old') === undefined)
    expect(await rig.store.index.getKey(key(3))).toBeDefined()
    expect(await rig.store.lookup(key(3))).toBeDefined()
    expect(await rig.store.getFinal('url:http://gone.example/new')).toBeDefined()
  })

  it('downloads starting together stay within the budget together, and evict no more than they need', async () => {
    const fs: Record<string, { size: number, seed: number }> = {}
    for (let i = 0; i < 4; i++) fs[`/old${i}.bin`] = { size: MiB, seed: 20 + i }
    for (let i = 0; i < 3; i++) fs[`/new${i}.bin`] = { size: MiB, seed: 30 + i }
    server = track(await startFileServer({ files: fs }))
    // A slow statfs, so reservations made side by side overlap; no periodic sweep to tidy up after them.
    const slowStatfs = async (): Promise<number> => { await new Promise(resolve => setTimeout(resolve, 200)); return 2 ** 40 }
    rig = track(await makeRig({ maxBytes: 4.5 * MiB, highWatermark: 1, lowWatermark: 1, freeBytes: slowStatfs, sweepEveryMs: 3_600_000 }))
    for (let i = 0; i < 4; i++) {
      const h = await blob(rig, new URL(`${server.url}/old${i}.bin`))
      await sha256Of(h.open(0, MiB))
      h.release()
      await until(() => rig?.fetcher.activeDownloads().length === 0)
    }
    const r = rig
    const handles = await Promise.all([0, 1, 2].map(async i => await blob(r, new URL(`${server?.url ?? ''}/new${i}.bin`))))
    await Promise.all(handles.map(async h => { await sha256Of(h.open(0, MiB)); h.release() }))
    await until(() => r.fetcher.activeDownloads().length === 0)
    await until(async () => await r.store.lookup(urlIdentity(new URL(`${server?.url ?? ''}/new2.bin`)).key) !== undefined)
    // Each new file needs one old one gone: the three oldest go, the newest old one stays, all within budget.
    expect(r.store.stats().total_size_bytes).toBeLessThanOrEqual(4.5 * MiB)
    for (let i = 0; i < 3; i++) expect(await r.store.lookup(urlIdentity(new URL(`${server.url}/old${i}.bin`)).key)).toBeUndefined()
    expect(await r.store.lookup(urlIdentity(new URL(`${server.url}/old3.bin`)).key)).toBeDefined()
    expect(r.store.stats().file_count).toBe(4)
  })

  it('after a reboot, the progress of a file known only by its URL is trusted only if its file was synced (a power loss may have lost bytes it counts)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-boot-'))
    track({ close: async () => { await rm(dir, { recursive: true, force: true }) } })
    const now = Date.now()
    const entry = (updatedAt: number, expectedDigest: string | null, synced?: boolean): PartialEntry => ({
      ...(synced === undefined ? {} : { synced }),
      url: 'http://u/f', size: 1024, pieceSize: 256, bitmap: new PieceBitmap(4).toBase64(), spans: [[0, 100]],
      contentType: null, headers: {}, validator: { etag: '"e"', lastModified: null }, etag: '"e"', expectedDigest, startedAt: updatedAt, updatedAt
    })
    const first = new BlobStore({ logger: silent }, { dir, maxBytes: 1 << 30, bootTime: now - 60_000 })
    await first.start()
    const digestKey = 'sha256:' + 'a'.repeat(64)
    const parts: Record<string, PartialEntry> = { 'url:http://u/before': entry(now - 2000, null), [digestKey]: entry(now - 2000, digestKey), 'url:http://u/after': entry(now - 200, null), 'url:http://u/synced': entry(now - 2000, null, true) }
    for (const [key, e] of Object.entries(parts)) {
      await first.putPartial(key, e)
      await writeFile(first.layout.tempPath(key), Buffer.alloc(1024))
    }
    await first.stop()

    // The machine booted between the first two entries and the last one.
    const again = new BlobStore({ logger: silent }, { dir, maxBytes: 1 << 30, bootTime: now - 1000 })
    track({ close: async () => { await again.stop() } })
    await again.start()
    expect(await again.getPartial('url:http://u/before')).toBeUndefined()
    await expect(stat(again.layout.tempPath('url:http://u/before'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await again.getPartial(digestKey)).toBeDefined()
    expect(await again.getPartial('url:http://u/after')).toBeDefined()
    // A download that stopped cleanly synced its file first: a reboot lost nothing.
    expect(await again.getPartial('url:http://u/synced')).toBeDefined()
  })

  it('without any download, a lowered budget is enforced at start and the free-disk floor by the periodic sweep', async () => {
    const fs: Record<string, { size: number, seed: number }> = {}
    for (let i = 0; i < 4; i++) fs[`/s${i}.bin`] = { size: MiB, seed: 20 + i }
    server = track(await startFileServer({ files: fs }))
    rig = track(await makeRig())
    for (let i = 0; i < 4; i++) {
      const h = await blob(rig, new URL(`${server.url}/s${i}.bin`))
      await sha256Of(h.open(0, MiB))
      h.release()
      await until(() => rig?.fetcher.activeDownloads().length === 0)
    }
    expect(rig.store.stats().file_count).toBe(4)
    await rig.fetcher.stop()
    await rig.store.stop()

    // max_size_gb lowered to 3 MiB: down to the low watermark (85 %) at start, oldest first.
    let free = Number.POSITIVE_INFINITY
    const store = new BlobStore({ logger: silent }, { dir: rig.dir, maxBytes: 3 * MiB, minFreeBytes: 2 * MiB, sweepEveryMs: 20, freeBytes: async () => free })
    track({ close: async () => { await store.stop() } })
    await store.start()
    await until(() => store.stats().file_count === 2)
    expect(await store.lookup(urlIdentity(new URL(`${server.url}/s0.bin`)).key)).toBeUndefined()
    expect(await store.lookup(urlIdentity(new URL(`${server.url}/s3.bin`)).key)).toBeDefined()

    // Another program fills the disk: the next sweep frees what the floor asks for.
    free = MiB
    await until(() => store.stats().file_count < 2)
    expect(await store.lookup(urlIdentity(new URL(`${server.url}/s3.bin`)).key)).toBeDefined()
  })
})
