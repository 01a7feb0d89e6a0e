import { mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { BlobStore } from '../../../node/store/blob-store.ts'
import type { PartialEntry } from '../../../node/store/index-db.ts'
import { PieceBitmap } from '../../../node/store/partial.ts'
import { bytesOnDisk } from '../../../node/store/partial-space.ts'

const PIECE = 100

/** A stopped download of `size` bytes with `done` whole pieces on disk, last written at `at`. */
function partial (size: number, done: number, at: number): PartialEntry {
  const bitmap = new PieceBitmap(Math.ceil(size / PIECE))
  for (let i = 0; i < done; i++) bitmap.set(i)
  return {
    url: 'http://x/', size, pieceSize: PIECE, bitmap: bitmap.toBase64(), contentType: null, headers: {},
    validator: { etag: '"e"', lastModified: null }, etag: '"e"', expectedDigest: null, startedAt: at, updatedAt: at, synced: true
  }
}

let dir: string
let store: BlobStore

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aimirror-store-'))
})

afterEach(async () => {
  await store?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function keepPartial (key: string, entry: PartialEntry): Promise<void> {
  await writeFile(store.layout.tempPath(key), Buffer.alloc(entry.size))
  await store.putPartial(key, entry)
}

async function commitBlob (key: string, size: number, digestChar: string): Promise<void> {
  const temp = store.layout.tempPath(key)
  const fh = await open(temp, 'w+')
  await fh.writeFile(Buffer.alloc(size))
  try {
    await store.commit(key, { path: temp, fh }, { digest: digestChar.repeat(64), size, contentType: null, headers: {}, validator: { etag: null, lastModified: null }, etag: '"b"', fetchedAt: 1 })
  } finally {
    await fh.close()
  }
}

it('counts the pieces a progress entry says are on disk', () => {
  expect(bytesOnDisk(partial(1000, 3, 0))).toBe(300)
  expect(bytesOnDisk({ ...partial(1000, 3, 0), spans: [[500, 550]] })).toBe(350)
  expect(bytesOnDisk(partial(250, 3, 0))).toBe(250)
})

it('stopped partial downloads count against the budget and are evicted by when they were last written, like blobs', async () => {
  store = new BlobStore({ logger: pino({ level: 'silent' }) }, { dir, maxBytes: 1000, sweepEveryMs: 3600_000 })
  await store.start()
  const now = Date.now()
  await keepPartial('url:http://x/old', partial(1000, 4, now - 60_000))
  await commitBlob('url:http://x/blob', 300, 'a')
  await keepPartial('url:http://x/new', partial(1000, 2, now + 60_000))
  // 400 + 300 + 200 of 1000, and 300 to come: over the high watermark, so the oldest goes first (the
  // old partial, down to the low watermark).
  expect(await store.reserve(300)).toBe(true)
  expect(await store.getPartial('url:http://x/old')).toBeUndefined()
  expect(await store.getPartial('url:http://x/new')).toBeDefined()
  expect(store.stats().file_count).toBe(1)
  const left = await readdir(store.layout.tmpDir)
  expect(left).toEqual([store.layout.tempPath('url:http://x/new').split('/').pop()])
})

it('a partial download a download holds is neither evicted nor counted twice', async () => {
  store = new BlobStore({ logger: pino({ level: 'silent' }) }, { dir, maxBytes: 1000, sweepEveryMs: 3600_000 })
  await store.start()
  await keepPartial('url:http://x/resuming', partial(1000, 9, Date.now() - 60_000))
  const release = store.holdPartial('url:http://x/resuming')
  // Its download's reservation covers it: the budget has room for one more 900 only when it is not
  // counted besides.
  expect(await store.reserve(900)).toBe(true)
  expect(await store.getPartial('url:http://x/resuming')).toBeDefined()
  store.unreserve(900)
  release()
  // Idle again: it counts, and a new download that needs the room evicts it.
  expect(await store.reserve(900)).toBe(true)
  expect(await store.getPartial('url:http://x/resuming')).toBeUndefined()
})

it('partial downloads found at start count against the budget', async () => {
  store = new BlobStore({ logger: pino({ level: 'silent' }) }, { dir, maxBytes: 1000, sweepEveryMs: 3600_000 })
  await store.start()
  await keepPartial('url:http://x/left', partial(1000, 8, Date.now()))
  await store.stop()
  store = new BlobStore({ logger: pino({ level: 'silent' }) }, { dir, maxBytes: 1000, sweepEveryMs: 3600_000, lruEnabled: false })
  await store.start()
  expect(await store.getPartial('url:http://x/left')).toBeDefined()
  // Without eviction the 800 bytes on disk leave no room for 300 more.
  expect(await store.reserve(300)).toBe(false)
  expect(await store.reserve(150)).toBe(true)
})

it('the periodic sweep brings stopped partial downloads under the budget too', async () => {
  store = new BlobStore({ logger: pino({ level: 'silent' }) }, { dir, maxBytes: 1000, sweepEveryMs: 3600_000 })
  await store.start()
  const now = Date.now()
  for (let i = 0; i < 5; i++) await keepPartial(`url:http://x/${i}`, partial(1000, 3, now - 60_000 + i))
  // 1500 of 1000: the oldest go until 850 at most is left.
  expect(await store.evict()).toBe(3)
  const kept = await Promise.all([0, 1, 2, 3, 4].map(async i => await store.getPartial(`url:http://x/${i}`) !== undefined))
  expect(kept).toEqual([false, false, false, true, true])
})
