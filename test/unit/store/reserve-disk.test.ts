import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { expect, it } from 'vitest'
import { BlobStore } from '../../../node/store/blob-store.ts'

it('downloads starting together do not count the space the others reserved as free: their files are not written yet', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-store-'))
  // A disk with 1000 bytes free and a floor of 100; temp files are sparse, so it stays at 1000 until written.
  let diskFree = 1000
  const store = new BlobStore({ logger: pino({ level: 'silent' }) }, { dir, maxBytes: 1 << 30, minFreeBytes: 100, freeBytes: async () => diskFree, sweepEveryMs: 3600_000 })
  try {
    await store.start()
    let aWritten = 0
    const a = (): number => aWritten
    expect(await store.reserve(600, a)).toBe(true)
    // 600 of the 1000 are a's to write: 350 more would leave less than the floor.
    expect(await store.reserve(350, () => 0)).toBe(false)
    expect(await store.reserve(250, () => 0)).toBe(true)
    // a wrote 400 (the disk shows it): still 200 to come, and 250 reserved beside it.
    aWritten = 400
    diskFree = 600
    expect(await store.reserve(100, () => 0)).toBe(false)
    store.unreserve(600, a)
    expect(await store.reserve(100, () => 0)).toBe(true)
  } finally {
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  }
})
