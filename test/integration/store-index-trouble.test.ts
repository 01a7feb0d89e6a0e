import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { BlobStore } from '../../node/store/blob-store.ts'
import { IndexDb } from '../../node/store/index-db.ts'
import type { KeyEntry } from '../../node/store/index-db.ts'

const silent = pino({ level: 'silent' })
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  vi.restoreAllMocks()
  for (const clean of cleanups.splice(0).reverse()) await clean()
})

async function startedStore (dir: string): Promise<BlobStore> {
  const store = new BlobStore({ logger: silent }, { dir, maxBytes: 1 << 30, sweepEveryMs: 3600_000 })
  await store.start()
  cleanups.push(async () => { await store.stop() })
  return store
}

function keyEntry (digest: string, size: number): KeyEntry {
  return { digest, size, contentType: null, headers: {}, validator: { etag: null, lastModified: null }, etag: `"${digest}"`, fetchedAt: Date.now() }
}

/** Commits `data` under `key` through a temp file, as a download does. */
async function commit (store: BlobStore, key: string, data: Buffer): Promise<string> {
  const digest = createHash('sha256').update(data).digest('hex')
  const temp = store.layout.tempPath(key)
  const fh = await open(temp, 'w+')
  try {
    await fh.writeFile(data)
    await store.commit(key, { path: temp, fh }, keyEntry(digest, data.length))
  } finally {
    await fh.close()
  }
  return digest
}

async function blobFiles (store: BlobStore): Promise<string[]> {
  const out: string[] = []
  for (const shard of await readdir(store.layout.blobsDir)) out.push(...await readdir(join(store.layout.blobsDir, shard)))
  return out
}

describe('the index failing to write leaves no blob file unaccounted for', () => {
  it('a commit whose index write fails removes the file it renamed in', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-idx-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const store = await startedStore(dir)
    vi.spyOn(IndexDb.prototype, 'commit').mockRejectedValueOnce(Object.assign(new Error('IO error: 000015.ldb: No space left on device'), { code: 'LEVEL_IO_ERROR' }))
    await expect(commit(store, 'url:http://x/a', randomBytes(1000))).rejects.toThrow(/No space left/)
    expect(await blobFiles(store)).toEqual([])
    expect(store.stats()).toMatchObject({ file_count: 0, total_size_bytes: 0 })
  })

  it('a dropped blob\'s file goes even when its index entry cannot be removed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-idx-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const store = await startedStore(dir)
    const digest = await commit(store, 'url:http://x/b', randomBytes(1000))
    vi.spyOn(IndexDb.prototype, 'delBlob').mockRejectedValueOnce(Object.assign(new Error('IO error: 000015.ldb: No space left on device'), { code: 'LEVEL_IO_ERROR' }))
    await store.drop(digest, 'evicted')
    expect(await blobFiles(store)).toEqual([])
    // The entry left behind finds no file: the key is a miss, not a wrong answer.
    expect(await store.lookup('url:http://x/b')).toBeUndefined()
  })

  it('a blob file the index does not know (a crash between rename and index write) is taken back at start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-idx-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    let store = await startedStore(dir)
    await commit(store, 'url:http://x/c', randomBytes(1000))
    await store.stop()
    const stray = randomBytes(3000)
    const digest = createHash('sha256').update(stray).digest('hex')
    const path = store.layout.blobPath(digest)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, stray)
    store = await startedStore(dir)
    expect(store.stats()).toMatchObject({ file_count: 2, total_size_bytes: 4000 })
    expect(await store.hasDigest(digest)).toBe(true)
  })
})

/** A tmpfs of `mib` MiB (root only); null where it cannot be mounted. */
async function smallDisk (mib: number): Promise<string | null> {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-small-disk-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { stdio: 'ignore' })
  } catch {
    await rm(dir, { recursive: true, force: true })
    return null
  }
  cleanups.push(async () => {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' })
    await rm(dir, { recursive: true, force: true })
  })
  return dir
}

// Needs a tmpfs mount (root, and a sandbox that lets it mount): skipped, and said so, elsewhere.
describe.skipIf(process.getuid?.() !== 0)('on a real disk that fills up', () => {
  it('an index whose table write failed for lack of space writes again once there is room (reopened)', async (ctx) => {
    const disk = await smallDisk(24)
    if (disk === null) ctx.skip('no tmpfs could be mounted here')
    if (disk === null) return
    const store = await startedStore(join(disk, 'cache'))
    // Leaves the index room for its log but not for a table: LevelDB then refuses every later write.
    await writeFile(join(disk, 'filler'), Buffer.alloc(Math.round(17.5 * (1 << 20))))
    const value = keyEntry('a'.repeat(64), 1)
    let failed: unknown = null
    for (let i = 0; i < 400_000 && failed === null; i++) {
      await store.index.putKey(`url:http://x/${i}?${'p'.repeat(100)}`, value).catch((err: unknown) => { failed = err })
    }
    expect(failed).toMatchObject({ code: 'LEVEL_IO_ERROR' })
    await rm(join(disk, 'filler'))
    // Within a few looks (every 2 s) it writes again, and a commit lands.
    const until = Date.now() + 15_000
    for (;;) {
      const ok = await store.index.putKey('url:http://x/after', value).then(() => true, () => false)
      if (ok) break
      if (Date.now() > until) throw new Error('the index never wrote again')
      await new Promise(resolve => setTimeout(resolve, 250))
    }
    await commit(store, 'url:http://x/blob', randomBytes(5000))
    expect(store.stats().file_count).toBe(1)
  }, 60_000)
})
