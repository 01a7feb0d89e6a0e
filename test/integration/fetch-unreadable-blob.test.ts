import type * as Fs from 'node:fs'
import type * as FsPromises from 'node:fs/promises'
import { chmod } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { expect, it, vi } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, sha256Of, until } from './fetch-helpers.ts'
import type * as Helpers from './fetch-helpers.ts'

/** The one path whose opening fails (EIO: a failing disk), by either of Node's file APIs. */
const failing = vi.hoisted(() => ({ path: '' }))
const eio = (path: string): Error => Object.assign(new Error(`EIO: i/o error, open '${path}'`), { code: 'EIO' })

vi.mock('node:fs/promises', async (original) => {
  const real = await original<typeof FsPromises>()
  const open: typeof real.open = async (path, ...rest) => { if (path === failing.path) throw eio(String(path)); return await real.open(path, ...rest) }
  return { ...real, open, default: { ...real, open } }
})
vi.mock('node:fs', async (original) => {
  const real = await original<typeof Fs>()
  const open = ((path: string, flags: string, cb: (err: Error | null, fd: number) => void) => {
    if (path === failing.path) { process.nextTick(cb, eio(path), -1); return }
    real.open(path, flags, cb)
  }) as typeof real.open
  const createReadStream = ((path: string, options?: object) => {
    if (path !== failing.path) return real.createReadStream(path, options as Parameters<typeof real.createReadStream>[1])
    return new Readable({ read () { this.destroy(eio(path)) } })
  }) as typeof real.createReadStream
  return { ...real, open, createReadStream, default: { ...real, open, createReadStream } }
})

const SIZE = 2 * (1 << 20) + 9
const track = closedAfterEach()

/**
 * The store and fetch engine loaded afresh, with the mocks above: test files share workers (and their
 * module cache), so modules loaded by an earlier file would keep Node's own file functions.
 */
async function freshRig (): Promise<Helpers.Rig> {
  vi.resetModules()
  const { makeRig } = await import('./fetch-helpers.ts')
  return await makeRig()
}

it('a cached blob file that cannot be opened (a failing disk) is dropped and fetched again, not a failure for every client', async () => {
  const server = track(await startFileServer({ files: { '/u.bin': { size: SIZE, seed: 13 } } }))
  const rig = track(await freshRig())
  const url = new URL(server.url + '/u.bin')
  const fetchWhole = async (): Promise<string> => {
    const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4 })
    if (got.kind !== 'blob') throw new Error(`expected the file, got ${got.kind}`)
    try {
      expect((await sha256Of(got.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 13))
      return got.from
    } finally {
      got.release()
    }
  }
  const blobFile = rig.store.layout.blobPath(generatedSha256(SIZE, 13))
  /** Asked while its blob file fails to open: fetched again, then served from the cache once it opens. */
  const refetchedWhileFailing = async (): Promise<void> => {
    failing.path = blobFile
    try {
      expect(await fetchWhole()).toBe('download')
    } finally {
      failing.path = ''
    }
    await until(() => rig.store.stats().file_count === 1)
    expect(await fetchWhole()).toBe('cache')
  }
  expect(await fetchWhole()).toBe('download')
  await until(() => rig.store.stats().file_count === 1)
  await refetchedWhileFailing()
  // Its permissions changed (its change time moved: it is hashed again before it is served) and it
  // cannot be read: dropped and fetched again too.
  await chmod(blobFile, 0o644)
  await refetchedWhileFailing()
})
