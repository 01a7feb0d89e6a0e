import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 6 * MiB + 11
const track = closedAfterEach()

/** Answers without an ETag (Last-Modified only), or without either, as some file servers do. */
function without (res: ServerResponse, names: readonly string[]): void {
  const writeHead = res.writeHead.bind(res) as (status: number, headers?: Record<string, string>) => ServerResponse
  res.writeHead = ((status: number, headers?: Record<string, string>) => {
    if (headers !== undefined) for (const name of names) delete headers[name]
    return writeHead(status, headers)
  }) as typeof res.writeHead
}

interface Mode {
  name: string
  ranges: boolean
  /** Validators the upstream leaves out. */
  drop: readonly string[]
}

const MODES: Mode[] = [
  { name: 'Range, ETag', ranges: true, drop: [] },
  { name: 'Range, Last-Modified only', ranges: true, drop: ['ETag'] },
  // Nothing tells the versions apart: the file comes in one stream, and its check compares its last bytes.
  { name: 'Range, neither ETag nor Last-Modified', ranges: true, drop: ['ETag', 'Last-Modified'] },
  { name: 'no Range, ETag', ranges: false, drop: [] }
]

describe('a file replaced upstream while it downloads (same size, same URL)', () => {
  for (const mode of MODES) {
    it(`${mode.name}: no client gets both versions as one complete file, and the cache never holds them mixed`, async () => {
      let requests = 0
      let server: FileServer | null = null
      const hook = (_req: IncomingMessage, res: ServerResponse): undefined => {
        requests++
        without(res, mode.drop)
        // The second request (another piece, or the retry of the cut single stream) finds the new version.
        if (requests === 2) server?.setFile('/f.bin', { size: SIZE, seed: 2, lastModified: new Date(Date.UTC(2026, 1, 2)) })
      }
      server = track(await startFileServer({
        files: { '/f.bin': { size: SIZE, seed: 1, lastModified: new Date(Date.UTC(2026, 0, 1)) } },
        ranges: mode.ranges,
        perConnectionBps: 8 * MiB,
        // Without Range there is one stream: it is cut once, and its retry asks for the whole file again.
        faults: mode.ranges ? undefined : { failAfterBytes: 2 * MiB, failTimes: 1 },
        onRequest: hook
      }))
      const rig = track(await makeRig())
      const url = new URL(server.url + '/f.bin')
      const v1 = generatedSha256(SIZE, 1)
      const v2 = generatedSha256(SIZE, 2)
      const first = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4 })
      if (first.kind !== 'blob') throw new Error(`expected a blob, got ${first.kind}`)
      const got = await sha256Of(first.open(0, SIZE)).catch(() => null)
      first.release()
      if (got !== null) expect([v1, v2]).toContain(got.hex)
      expect(requests).toBeGreaterThanOrEqual(2)
      await until(() => rig.fetcher.activeDownloads().length === 0)
      // Asked again: the file as the upstream serves it now, whole.
      const again = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4, revalidateAfterMs: 0 })
      if (again.kind !== 'blob') throw new Error(`expected a blob, got ${again.kind}`)
      expect((await sha256Of(again.open(0, SIZE))).hex).toBe(v2)
      again.release()
      await until(() => rig.fetcher.activeDownloads().length === 0)
      for (const key of [urlIdentity(url).key]) {
        const stored = await rig.store.lookup(key)
        if (stored !== undefined) expect(stored.entry.digest).toBe(v2)
      }
    })
  }
})
