import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { BlobHandle } from '../../node/fetch/fetcher.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { PieceBitmap } from '../../node/store/partial.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 4 * MiB
const PIECE = 256 * 1024
const opts = { chunkSize: PIECE, concurrency: 4 }
/** What a stopped download of /a.bin has on disk. */
const KEPT = 2 * MiB
const track = closedAfterEach()

async function blob (r: Rig, url: URL): Promise<BlobHandle> {
  const a = await r.fetcher.acquire(urlIdentity(url), { url }, opts)
  if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
  return a
}

async function fetchWhole (r: Rig, url: URL, seed: number): Promise<void> {
  const h = await blob(r, url)
  expect((await sha256Of(h.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, seed))
  h.release()
}

/**
 * A cache of `budget` bytes whose download of /a.bin stopped with its first 2 MiB on disk (the upstream
 * answers no range beyond them meanwhile), restarted.
 */
async function rigWithStopped (budget: number): Promise<{ r: Rig, url: (path: string) => URL, sent: () => number, key: string }> {
  let holdBack = true
  const s = track(await startFileServer({
    files: Object.fromEntries(['/a.bin', '/b.bin', '/c.bin'].map((p, i) => [p, { size: SIZE, seed: i + 1, lastModified: new Date(Date.UTC(2026, 0, 1)) }])),
    perConnectionBps: 2 * MiB,
    onRequest: async (req, res) => {
      const from = Number(/^bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0)
      if (!holdBack || req.url !== '/a.bin' || from < KEPT) return false
      await once(res, 'close')
      return true
    }
  }))
  const r = track(await makeRig({ maxBytes: budget, sweepEveryMs: 3600_000 }))
  const url = (path: string): URL => new URL(s.url + path)
  const key = urlIdentity(url('/a.bin')).key
  const h = await blob(r, url('/a.bin'))
  await until(async () => {
    const p = await r.store.getPartial(key)
    return p !== undefined && PieceBitmap.fromBase64(SIZE / PIECE, p.bitmap).done >= KEPT / PIECE
  })
  h.release()
  await r.restart()
  holdBack = false
  return { r, url, sent: () => s.stats.bytesSent, key }
}

it('a stopped download\'s partial file counts against the cache budget and goes when newer files need the room', async () => {
  const { r, url, key } = await rigWithStopped(10 * MiB)
  expect(await r.store.getPartial(key)).toBeDefined()
  await fetchWhole(r, url('/b.bin'), 2)
  await until(() => r.store.stats().file_count === 1)
  // 4 MiB of b, 2 MiB of a's partial and 4 MiB to come: over the high watermark (9.5 MiB), so
  // the least recently written goes, a's partial (b was just read), down to the low one (8.5 MiB).
  await fetchWhole(r, url('/c.bin'), 3)
  await until(() => r.store.stats().file_count === 2)
  expect(await r.store.getPartial(key)).toBeUndefined()
  expect(await readdir(r.store.layout.tmpDir)).toEqual([])
  // Asked again, it comes down whole and right.
  await fetchWhole(r, url('/a.bin'), 1)
})

it('a download resuming in a full cache keeps its own partial file and evicts others', async () => {
  const { r, url, key, sent } = await rigWithStopped(7.5 * MiB)
  const done = PieceBitmap.fromBase64(SIZE / PIECE, (await r.store.getPartial(key))?.bitmap ?? '').done
  expect(done).toBe(KEPT / PIECE)
  await fetchWhole(r, url('/b.bin'), 2)
  await until(() => r.store.stats().file_count === 1)
  // Fetching b left a's 2 MiB alone (6 of 7.1 MiB, the high watermark). Resuming a needs 4 MiB beside
  // b's 4: b goes, a's partial (older, but its download's own) stays.
  const before = sent()
  await fetchWhole(r, url('/a.bin'), 1)
  expect(sent() - before).toBeLessThanOrEqual(SIZE - done * PIECE + 4 * PIECE)
  await until(() => r.store.stats().file_count === 1)
  expect((await r.store.lookup(urlIdentity(url('/b.bin')).key))).toBeUndefined()
})
