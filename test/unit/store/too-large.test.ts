import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { expect, it } from 'vitest'
import { BlobStore } from '../../../node/store/blob-store.ts'

it('a file larger than the whole cache is not reserved for, and the log says why once, not at every request', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-store-'))
  const lines: Array<{ level: number, msg: string, bytes?: number, max?: number }> = []
  const logger = pino({ level: 'debug' }, new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() } }))
  const store = new BlobStore({ logger }, { dir, maxBytes: 1 << 20 })
  try {
    await store.start()
    expect(await store.reserve(2 << 20)).toBe(false)
    expect(await store.reserve(3 << 20)).toBe(false)
    const said = lines.filter(l => l.msg.startsWith('a file larger than the whole cache'))
    expect(said.map(l => [l.level, l.bytes, l.max])).toEqual([[40, 2 << 20, 1 << 20], [20, 3 << 20, 1 << 20]])
    // A file that fits is reserved without a word.
    expect(await store.reserve(1 << 19)).toBe(true)
  } finally {
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  }
})

it('a disk with no room for the cache (cache.min_free_gb above what it has) is warned about once a minute, not at every request', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-store-'))
  const lines: Array<{ level: number, msg: string, also?: number, minFree?: number }> = []
  const logger = pino({ level: 'debug' }, new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() } }))
  const store = new BlobStore({ logger }, { dir, maxBytes: 1 << 30, minFreeBytes: 5000, freeBytes: async () => 4000 })
  try {
    await store.start()
    for (let i = 0; i < 3; i++) expect(await store.reserve(100)).toBe(false)
    const said = lines.filter(l => l.msg.startsWith('no room in the cache'))
    expect(said.map(l => [l.level, l.minFree])).toEqual([[40, 5000], [20, 5000], [20, 5000]])
  } finally {
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  }
})
