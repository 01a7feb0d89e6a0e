import { expect, it, vi } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import type * as TempFile from '../../node/fetch/temp-file.ts'
import { closedAfterEach, sha256Of } from './fetch-helpers.ts'
import type * as Helpers from './fetch-helpers.ts'

vi.mock('../../node/fetch/temp-file.ts', async (original) => {
  const real = await original<typeof TempFile>()
  return { ...real, openTempFile: vi.fn(real.openTempFile) }
})

const SIZE = 3 * (1 << 20) + 3
const track = closedAfterEach()

/**
 * The fetch engine loaded afresh, with the mock above (test files share workers and their module
 * cache), and its temp-file opener.
 */
async function freshRig (): Promise<{ rig: Helpers.Rig, openTempFile: typeof TempFile.openTempFile }> {
  vi.resetModules()
  const { makeRig } = await import('./fetch-helpers.ts')
  const { openTempFile } = await import('../../node/fetch/temp-file.ts')
  return { rig: await makeRig(), openTempFile }
}

// A disk that takes no new file (read-only, not permitted, out of inodes: ENOSPC on open).
it.each(['EROFS', 'EACCES', 'ENOSPC'])('(%s) a download whose temp file the disk refuses passes the file through to its client, uncached', async (code) => {
  const server = track(await startFileServer({ files: { '/r.bin': { size: SIZE, seed: 12 } } }))
  const { rig, openTempFile } = await freshRig()
  track(rig)
  vi.mocked(openTempFile).mockRejectedValueOnce(Object.assign(new Error(`${code}: open 'tmp/x.part'`), { code }))
  const url = new URL(server.url + '/r.bin')
  const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
  try {
    expect((await sha256Of(got.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 12))
  } finally {
    got.release()
  }
  expect(rig.store.stats().file_count).toBe(0)
  // The disk takes files again: the next request caches it.
  const again = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4 })
  if (again.kind !== 'blob') throw new Error(`expected the file, got ${again.kind}`)
  expect(again.from).toBe('download')
  expect((await sha256Of(again.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 12))
  again.release()
})
