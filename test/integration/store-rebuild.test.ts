import { mkdir, open, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it, vi } from 'vitest'
import type { Acquired, BlobHandle } from '../../node/fetch/acquire-types.ts'
import { digestIdentity, urlIdentity } from '../../node/fetch/identity.ts'
import { IndexDb } from '../../node/store/index-db.ts'
import type { BlobIdentity } from '../../node/fetch/identity.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, credentialGate, makeRig, sha256Of, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 2 * MiB + 11
const OPTS = { chunkSize: 512 * 1024, concurrency: 4 }
const track = closedAfterEach()

function byDigest (seed: number): BlobIdentity {
  return digestIdentity({ algorithm: 'sha256', hex: generatedSha256(SIZE, seed) })
}

async function acquire (r: Rig, url: URL, id: BlobIdentity, authorization?: string): Promise<Acquired> {
  return await r.fetcher.acquire(id, { url, headers: authorization === undefined ? {} : { authorization } }, OPTS)
}

async function blobOf (got: Acquired): Promise<BlobHandle> {
  if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind} ${got.status}`)
  return got
}

/** Fetches `path` into the cache as `id`, read whole. */
async function cache (r: Rig, server: FileServer, path: string, id: BlobIdentity, authorization?: string): Promise<void> {
  const h = await blobOf(await acquire(r, new URL(server.url + path), id, authorization))
  await sha256Of(h.open(0, SIZE))
  h.release()
  await until(async () => (await r.store.index.getKey(id.key)) !== undefined)
}

/** Stops the rig's store and makes its index unreadable, as a disk losing the index's files would. */
async function damageIndex (r: Rig): Promise<void> {
  await r.fetcher.stop()
  await r.store.stop()
  const dir = r.store.layout.indexDir
  for (const name of await readdir(dir)) if (name.startsWith('MANIFEST')) await writeFile(join(dir, name), Buffer.alloc(300, 7))
}

async function files (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name))
  return out.sort()
}

describe('an index made anew keeps the blob files on disk', () => {
  it('a damaged index: the blobs are taken back, each hashed before its first use; a corrupt one and stray files go', async () => {
    const state = { locked: false, requests: 0 }
    const server = track(await startFileServer({ files: { '/a.bin': { size: SIZE, seed: 1 }, '/b.bin': { size: SIZE, seed: 2 } }, onRequest: credentialGate(state) }))
    const rig = track(await makeRig())
    await cache(rig, server, '/a.bin', byDigest(1))
    await cache(rig, server, '/b.bin', byDigest(2))
    const blobs = rig.store.layout.blobsDir
    const kept = await files(blobs)
    expect(kept).toHaveLength(2)
    await damageIndex(rig)
    // b rots on disk (same size, same name); a stray file and a misplaced blob name lie in the tree.
    const fh = await open(rig.store.layout.blobPath(generatedSha256(SIZE, 2)), 'r+')
    await fh.write(Buffer.from('rotten'), 0, 6, 4096)
    await fh.close()
    await writeFile(join(blobs, 'stray.tmp'), 'x')
    await mkdir(join(blobs, 'ff'), { recursive: true })
    await writeFile(join(blobs, 'ff', 'ab'.repeat(32)), 'y')

    await rig.restart()
    expect(await files(blobs)).toEqual(kept)
    expect(rig.store.stats()).toMatchObject({ file_count: 2, total_size_bytes: 2 * SIZE })

    // a: served from the cache, its right bytes; only the one-byte access check went upstream.
    state.requests = 0
    server.stats.reset()
    const a = await blobOf(await acquire(rig, new URL(server.url + '/a.bin'), byDigest(1)))
    expect(a.from).toBe('cache')
    expect((await sha256Of(a.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 1))
    a.release()
    expect(state.requests).toBe(1)
    expect(server.stats.bytesSent).toBeLessThan(1024)
    // An anonymous client was let have it: it is public now, served with the upstream gone too (also
    // after a restart, which forgets the upstream's answers).
    await rig.restart()
    server.configure({ status: { '/a.bin': 503 } })
    const again = await blobOf(await acquire(rig, new URL(server.url + '/a.bin'), byDigest(1)))
    expect(again.from).toBe('cache')
    again.release()
    expect(state.requests).toBe(1)

    // b does not match its name: dropped at its first use and fetched again.
    const b = await blobOf(await acquire(rig, new URL(server.url + '/b.bin'), byDigest(2)))
    expect(b.from).toBe('download')
    expect((await sha256Of(b.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 2))
    b.release()
  })

  it('a blob taken back is given by its digest only to clients the upstream lets have it', async () => {
    const state = { locked: true, requests: 0 }
    const server = track(await startFileServer({ files: { '/p.bin': { size: SIZE, seed: 3 } }, onRequest: credentialGate(state) }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/p.bin')
    await cache(rig, server, '/p.bin', byDigest(3), 'Bearer good')
    await damageIndex(rig)
    await rig.restart()

    for (const who of [undefined, 'Bearer bad']) {
      const other = await acquire(rig, url, byDigest(3), who)
      expect(other.kind === 'upstream-response' && other.status).toBe(401)
    }
    const owner = await blobOf(await acquire(rig, url, byDigest(3), 'Bearer good'))
    expect(owner.from).toBe('cache')
    expect((await sha256Of(owner.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 3))
    owner.release()
    // Its owner's access says nothing of anyone else's.
    const anonymous = await acquire(rig, url, byDigest(3))
    expect(anonymous.kind === 'upstream-response' && anonymous.status).toBe(401)
  })

  it('an index of another format version, or deleted, is made anew with the blobs on disk', async () => {
    const server = track(await startFileServer({ files: { '/v.bin': { size: SIZE, seed: 4 }, '/u.bin': { size: SIZE, seed: 5 } } }))
    const rig = track(await makeRig())
    await cache(rig, server, '/v.bin', byDigest(4))
    await rig.fetcher.stop()
    await rig.store.stop()
    const raw = new Level<string, unknown>(rig.store.layout.indexDir, { valueEncoding: 'json' })
    await raw.put('meta!version', 999)
    await raw.close()
    await rig.restart()
    expect(rig.store.stats().file_count).toBe(1)
    const v = await blobOf(await acquire(rig, new URL(server.url + '/v.bin'), byDigest(4)))
    expect(v.from).toBe('cache')
    v.release()

    // A file known by its URL only: its key went with the index, its bytes are still counted and shared by digest.
    const url = new URL(server.url + '/u.bin')
    await cache(rig, server, '/u.bin', urlIdentity(url))
    await rig.fetcher.stop()
    await rig.store.stop()
    await rm(rig.store.layout.indexDir, { recursive: true })
    await rig.restart()
    expect(rig.store.stats()).toMatchObject({ file_count: 2, total_size_bytes: 2 * SIZE })
    expect(await rig.store.hasDigest(generatedSha256(SIZE, 5))).toBe(true)
  })
})

describe('a disk that refuses writes at start', () => {
  // LevelDB writes when it opens (its log becomes a table): on a full or read-only disk it fails to open.
  for (const [what, message] of [['full', 'IO error: index/000005.ldb: No space left on device'], ['read-only', 'IO error: index/LOCK: Read-only file system']]) {
    it(`(${what}) stops the start with a reason and leaves the index as it is, keys and all`, async () => {
      const server = track(await startFileServer({ files: { '/k.bin': { size: SIZE, seed: 6 } } }))
      const rig = track(await makeRig())
      const url = new URL(server.url + '/k.bin')
      await cache(rig, server, '/k.bin', urlIdentity(url))
      const refused = Object.assign(new Error('Database failed to open'), { code: 'LEVEL_DATABASE_NOT_OPEN', cause: Object.assign(new Error(message), { code: 'LEVEL_IO_ERROR' }) })
      const opening = vi.spyOn(IndexDb.prototype, 'open').mockRejectedValueOnce(refused)
      try {
        await expect(rig.restart()).rejects.toThrow(/cannot be written \((no space left on device|read-only file system)\): free some space/)
      } finally {
        opening.mockRestore()
      }
      // Space back: the same index, with the key a file known only by its URL had.
      await rig.restart()
      expect((await rig.store.lookup(urlIdentity(url).key))?.entry.digest).toBe(generatedSha256(SIZE, 6))
    })
  }
})

describe('the background check of every blob', () => {
  it('drops a blob whose bytes went bad on disk before any client asks, and keeps the good ones checked', async () => {
    const server = track(await startFileServer({ files: { '/g.bin': { size: SIZE, seed: 6 }, '/h.bin': { size: SIZE, seed: 7 } } }))
    const rig = track(await makeRig({ verifyEveryMs: 200, verifyLookEveryMs: 50, verifyBytesPerSecond: 64 << 20 }))
    await cache(rig, server, '/g.bin', byDigest(6))
    await cache(rig, server, '/h.bin', byDigest(7))
    const good = generatedSha256(SIZE, 6)
    const bad = generatedSha256(SIZE, 7)
    const committedAt = (await rig.store.index.getBlob(good))?.verifiedAt ?? 0
    expect(committedAt).toBeGreaterThan(0)
    const fh = await open(rig.store.layout.blobPath(bad), 'r+')
    await fh.write(Buffer.from('bit rot'), 0, 7, 123_456)
    await fh.close()

    // No request: the check finds it, removes the file, and the next client gets a new download.
    await until(() => rig.store.scrub?.counts.dropped === 1, 10_000)
    expect(rig.store.stats().file_count).toBe(1)
    expect(await files(rig.store.layout.blobsDir)).toEqual([rig.store.layout.blobPath(good)])
    await until(async () => ((await rig.store.index.getBlob(good))?.verifiedAt ?? 0) > committedAt, 10_000)
    const again = await blobOf(await acquire(rig, new URL(server.url + '/h.bin'), byDigest(7)))
    expect(again.from).toBe('download')
    expect((await sha256Of(again.open(0, SIZE))).hex).toBe(bad)
    again.release()
  })

  it('a client never waits on the slow background hash of its blob', async () => {
    const server = track(await startFileServer({ files: { '/c.bin': { size: SIZE, seed: 10 } } }))
    // About 4 s to hash the blob in the background.
    const rig = track(await makeRig({ verifyEveryMs: 1, verifyLookEveryMs: 20, verifyBytesPerSecond: 512 << 10 }))
    await cache(rig, server, '/c.bin', byDigest(10))
    await until(() => (rig.store.scrub?.counts.checked ?? 0) >= 1)
    // Touched meanwhile: the next hit is hashed again first, at full speed.
    const path = rig.store.layout.blobPath(generatedSha256(SIZE, 10))
    await utimes(path, new Date(), new Date())
    const t0 = performance.now()
    const hit = await blobOf(await acquire(rig, new URL(server.url + '/c.bin'), byDigest(10)))
    expect(hit.from).toBe('cache')
    hit.release()
    expect(performance.now() - t0).toBeLessThan(2000)
  })

  it('waits while downloads are under way', async () => {
    const server = track(await startFileServer({ files: { '/s.bin': { size: SIZE, seed: 8 }, '/t.bin': { size: SIZE, seed: 9 } }, perConnectionBps: 256 << 10 }))
    const rig = track(await makeRig({ verifyEveryMs: 1, verifyLookEveryMs: 50 }))
    await cache(rig, server, '/s.bin', byDigest(8))
    await until(() => (rig.store.scrub?.counts.checked ?? 0) > 1, 10_000)
    // A download of about 2 s (256 KiB/s per connection, four connections): no check begins meanwhile
    // (one already under way ends within a few dozen ms).
    const slow = await blobOf(await acquire(rig, new URL(server.url + '/t.bin'), byDigest(9)))
    const reading = sha256Of(slow.open(0, SIZE))
    await new Promise(resolve => setTimeout(resolve, 200))
    const checked = rig.store.scrub?.counts.checked ?? 0
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(rig.store.scrub?.counts.checked).toBe(checked)
    await reading
    slow.release()
    await until(() => (rig.store.scrub?.counts.checked ?? 0) > checked, 10_000)
  })
})
