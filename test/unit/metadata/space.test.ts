import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { metadataBudget, MetadataSpace } from '../../../node/metadata/space.ts'
import { MetadataStore } from '../../../node/metadata/store.ts'
import type { StoredEntry } from '../../../node/metadata/store.ts'

const silent = pino({ level: 'silent' })

/** Stores a document of `bytes` under `key` (with a variant of `variant` bytes), fetched at `at`. */
async function putDocument (store: MetadataStore, key: string, at: number, bytes: number, variant = 0): Promise<void> {
  const body = await store.writeBody(Readable.from([Buffer.alloc(bytes, 1)]))
  if (variant > 0) await store.writeVariant(body.gen, 'gzip', Buffer.alloc(variant, 2))
  const entry: StoredEntry = { url: 'https://x.test/', status: 200, headers: {}, validator: { etag: null, lastModified: null }, gen: body.gen, size: body.size, sha256: '0'.repeat(64), fetchedAt: at }
  await store.put(key, entry, undefined)
}

/** Body generations on disk under a metadata store's `dir`. */
async function generations (dir: string): Promise<number> {
  let n = 0
  for (const shard of await readdir(join(dir, 'bodies'))) n += (await readdir(join(dir, 'bodies', shard))).length
  return n
}

describe('the metadata cache\'s bound', () => {
  it('past its bytes, drops the least recently used entries down to 85 %, never the one just stored', () => {
    const space = new MetadataSpace(1000)
    for (const k of ['a', 'b', 'c', 'd']) {
      space.added(`g${k}`, 240)
      space.indexed(k, `g${k}`)
    }
    expect(space.victims('d')).toEqual([])
    space.used('a')
    space.added('ge', 240)
    space.indexed('e', 'ge')
    // 1200 bytes: b and c (least recently used) go, down to 720; a was used since.
    expect(space.victims('e')).toEqual([['b', 'gb'], ['c', 'gc']])
    expect(space.bytes).toBe(720)
    // A variant of a live body counts; of one already gone, not.
    space.added('ga', 100, true)
    space.added('gb', 100, true)
    expect(space.bytes).toBe(820)
    expect(metadataBudget(0.5)).toBe(64 << 20)
    expect(metadataBudget(100)).toBe(10 * 2 ** 30)
  })

  it('a store keeps within it, dropping documents not asked for lately, and takes its account again at start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-metadata-space-'))
    const put = async (store: MetadataStore, key: string, at: number): Promise<void> => { await putDocument(store, key, at, 3000, 1000) }
    try {
      const store = new MetadataStore({ logger: silent }, { dir, maxBytes: 10_000, graceMs: 0 })
      await store.start()
      await put(store, 'one', 1)
      await put(store, 'two', 2)
      expect(store.space.bytes).toBe(8000)
      await store.get('one')
      // 12 000 bytes: 'two' goes (not asked for since it was stored), 'one' stays.
      await put(store, 'three', 3)
      expect(await store.get('two')).toBeUndefined()
      expect(await store.get('one')).toBeDefined()
      expect(await store.get('three')).toBeDefined()
      expect(store.space.bytes).toBe(8000)
      await new Promise(resolve => setTimeout(resolve, 50))
      await store.stop()
      const again = new MetadataStore({ logger: silent }, { dir, maxBytes: 10_000 })
      await again.start()
      expect(again.space.bytes).toBe(8000)
      expect(again.space.entries).toBe(2)
      expect(await generations(dir)).toBe(2)
      await again.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('documents dropped for the bound', () => {
  it('leave the disk within a second, not after the minute a replaced body is kept for its readers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-metadata-evicted-'))
    try {
      const store = new MetadataStore({ logger: silent }, { dir, maxBytes: 5000 })
      await store.start()
      for (const [i, key] of ['one', 'two', 'three'].entries()) await putDocument(store, key, i, 2000)
      expect(await store.get('one')).toBeUndefined()
      expect(await generations(dir)).toBe(3)
      await new Promise(resolve => setTimeout(resolve, 1300))
      expect(await generations(dir)).toBe(2)
      await store.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('the hints\' bound', () => {
  it('past it, all hints are cleared and the epoch moves on (documents are derived again, and learn theirs again); both outlive a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-metadata-hints-'))
    try {
      const store = new MetadataStore({ logger: silent }, { dir, maxHints: 5 })
      await store.start()
      expect(store.hintEpoch).toBe(0)
      await store.putHints([['a', '1'], ['b', '2'], ['c', '3']])
      expect(await store.getHint('a')).toBe('1')
      await store.putHints([['d', '4'], ['e', '5'], ['f', '6']])
      expect(store.hintEpoch).toBe(1)
      expect(await store.getHint('a')).toBeUndefined()
      expect(await store.getHint('f')).toBe('6')
      await store.stop()
      const again = new MetadataStore({ logger: silent }, { dir, maxHints: 5 })
      await again.start()
      expect(again.hintEpoch).toBe(1)
      expect(await again.getHint('d')).toBe('4')
      // 3 written since the clear: 2 more fit, a third does not.
      await again.putHints([['g', '7'], ['h', '8']])
      expect(again.hintEpoch).toBe(1)
      await again.putHints([['i', '9']])
      expect(again.hintEpoch).toBe(2)
      expect(await again.getHint('d')).toBeUndefined()
      await again.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
