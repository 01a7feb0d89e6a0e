import { mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { pino } from 'pino'
import { expect, it } from 'vitest'
import { BlobStore } from '../../../node/store/blob-store.ts'
import type { PartialEntry } from '../../../node/store/index-db.ts'

const entry = (updatedAt: number): PartialEntry => ({
  url: 'http://x/', size: 4, pieceSize: 4, bitmap: '', contentType: null, headers: {}, validator: { etag: null, lastModified: null },
  etag: '"e"', expectedDigest: null, startedAt: updatedAt, updatedAt
})

it('partial downloads left untouched for the TTL are removed while the node runs, not only at its next start', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-store-'))
  const store = new BlobStore({ logger: pino({ level: 'silent' }) }, { dir, maxBytes: 1 << 20, partialTtlMs: 2000, partialSweepEveryMs: 100 })
  try {
    await store.start()
    const past = (Date.now() - 10_000) / 1000
    // A failed download's progress and file, both old: removed.
    await store.putPartial('url:http://x/failed', entry(Date.now() - 10_000))
    await writeFile(store.layout.tempPath('url:http://x/failed'), 'abcd')
    await utimes(store.layout.tempPath('url:http://x/failed'), past, past)
    // A download under way whose entry was saved long ago: its file is being written, kept.
    await store.putPartial('url:http://x/active', entry(Date.now() - 10_000))
    await writeFile(store.layout.tempPath('url:http://x/active'), 'abcd')
    // A file no entry names, old: removed; one just opened by a download that saved no entry yet: kept.
    await writeFile(store.layout.tempPath('url:http://x/orphan'), 'abcd')
    await utimes(store.layout.tempPath('url:http://x/orphan'), past, past)
    await writeFile(store.layout.tempPath('url:http://x/new'), 'abcd')
    // Not the store's (a cache.dir shared with something else): never removed, however old.
    await writeFile(join(store.layout.tmpDir, 'session.txt'), 'keep')
    await utimes(join(store.layout.tmpDir, 'session.txt'), past, past)
    await new Promise(resolve => setTimeout(resolve, 400))
    const left = await readdir(store.layout.tmpDir)
    expect(left.sort()).toEqual([basename(store.layout.tempPath('url:http://x/active')), basename(store.layout.tempPath('url:http://x/new')), 'session.txt'].sort())
    expect(await store.getPartial('url:http://x/failed')).toBeUndefined()
    expect(await store.getPartial('url:http://x/active')).toBeDefined()
  } finally {
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  }
})

it('starts on a cache dir whose tmp/ holds files and directories of others, and leaves them there', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-store-'))
  await mkdir(join(dir, 'tmp', 'sub'), { recursive: true })
  await writeFile(join(dir, 'tmp', 'session.txt'), 'keep')
  const store = new BlobStore({ logger: pino({ level: 'silent' }) }, { dir, maxBytes: 1 << 20 })
  try {
    // A temp file of a download that left no progress entry: removed at start.
    await writeFile(store.layout.tempPath('url:http://x/gone'), 'abcd')
    await store.start()
    expect((await readdir(store.layout.tmpDir)).sort()).toEqual(['session.txt', 'sub'])
  } finally {
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  }
})
