import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 3 * MiB + 5
const track = closedAfterEach()

/** An `onRequest` hook that edits the file server's response headers before they go. */
function editingHeaders (edit: (headers: Record<string, string>) => void): (req: IncomingMessage, res: ServerResponse) => undefined {
  return (_req, res) => {
    const writeHead = res.writeHead.bind(res) as (status: number, headers?: Record<string, string>) => ServerResponse
    res.writeHead = ((status: number, headers?: Record<string, string>) => {
      if (headers !== undefined) edit(headers)
      return writeHead(status, headers)
    }) as typeof res.writeHead
  }
}

/** Answers with neither ETag nor Last-Modified, as some dynamic file endpoints do. */
const unversioned = editingHeaders(headers => { delete headers.ETag; delete headers['Last-Modified'] })

describe('a file the upstream gives no ETag and no Last-Modified', () => {
  it('comes in one stream (ranges of two versions could not be told apart), and a broken one is not resumed', async () => {
    const server = track(await startFileServer({
      files: { '/f.bin': { size: SIZE, seed: 1 } },
      perConnectionBps: 16 * MiB,
      // The first range is the first response counted; the whole-file stream after it is cut.
      faults: { failAfterBytes: MiB, failTimes: 2, failMode: 'close' },
      onRequest: unversioned
    }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/f.bin')
    const first = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 256 * 1024, concurrency: 8 })
    if (first.kind !== 'blob') throw new Error(`expected a blob, got ${first.kind}`)
    // The first range learnt there is no validator; the file was then asked whole, and cut.
    await expect(sha256Of(first.open(0, SIZE))).rejects.toThrow()
    first.release()
    await until(() => rig.fetcher.activeDownloads().length === 0)
    expect(await rig.store.lookup(urlIdentity(url).key)).toBeUndefined()
    // Asking again gets the file whole, still without a range piece after the first.
    const again = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 256 * 1024, concurrency: 8 })
    if (again.kind !== 'blob') throw new Error(`expected a blob, got ${again.kind}`)
    expect((await sha256Of(again.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 1))
    again.release()
    await until(() => rig.fetcher.activeDownloads().length === 0)
    expect(server.stats.requests).toBe(4)
  })

  it('cached, it is checked by its bytes: a new version of the same size is fetched again', async () => {
    const server: FileServer = track(await startFileServer({ files: { '/g.bin': { size: SIZE, seed: 1 } }, onRequest: unversioned }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/g.bin')
    const get = async (): Promise<string> => {
      const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4, revalidateAfterMs: 0 })
      if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
      try {
        return (await sha256Of(got.open(0, SIZE))).hex
      } finally {
        got.release()
        await until(() => rig.fetcher.activeDownloads().length === 0)
      }
    }
    expect(await get()).toBe(generatedSha256(SIZE, 1))
    expect(await get()).toBe(generatedSha256(SIZE, 1))
    server.setFile('/g.bin', { size: SIZE, seed: 2 })
    expect(await get()).toBe(generatedSha256(SIZE, 2))
  })
})

describe('a file the upstream gives only a weak ETag', () => {
  /** `W/"<size>"` and no Last-Modified: a weak ETag says equivalent, not the same bytes. */
  const weakOnly = editingHeaders(headers => { headers.ETag = `W/"${SIZE}"`; delete headers['Last-Modified'] })

  it('comes in one stream after the first range, like a file without validators: ranges are not joined under it', async () => {
    const server = track(await startFileServer({ files: { '/w.bin': { size: SIZE, seed: 3 } }, onRequest: weakOnly }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/w.bin')
    const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 256 * 1024, concurrency: 8 })
    if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
    expect((await sha256Of(got.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 3))
    got.release()
    await until(() => rig.fetcher.activeDownloads().length === 0)
    // The first range, then the whole file in one GET.
    expect(server.stats.requests).toBe(2)
    expect(server.stats.rangeRequests).toBe(1)
  })
})

describe('a cached file without ETag or Last-Modified, changed upstream at the same size', () => {
  // A small file is compared whole; a larger one by its first and last 64 KiB.
  const cases = [['small file, in its middle', 200_000, 100_000, true], ['large file, in its first bytes', SIZE, 0, true], ['large file from an upstream without Range, in its first bytes', SIZE, 0, false]] as const
  for (const [what, size, at, ranges] of cases) {
    it(`is fetched again when 16 bytes change: ${what}`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'aimirror-unversioned-'))
      track({ close: async () => { await rm(dir, { recursive: true, force: true }) } })
      const path = join(dir, 'h.bin')
      const original = randomBytes(size)
      await writeFile(path, original)
      const server: FileServer = track(await startFileServer({ files: { '/h.bin': { file: path } }, onRequest: unversioned, ranges }))
      const rig = track(await makeRig())
      const url = new URL(server.url + '/h.bin')
      const get = async (): Promise<{ from: string, hex: string }> => {
        const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4, revalidateAfterMs: 0 })
        if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
        try {
          return { from: got.from, hex: (await sha256Of(got.open(0, size))).hex }
        } finally {
          got.release()
          await until(() => rig.fetcher.activeDownloads().length === 0)
        }
      }
      const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
      expect(await get()).toEqual({ from: 'download', hex: sha(original) })
      expect(await get()).toEqual({ from: 'cache', hex: sha(original) })
      const changed = Buffer.from(original)
      randomBytes(16).copy(changed, at)
      await writeFile(path, changed)
      expect(await get()).toEqual({ from: 'download', hex: sha(changed) })
    })
  }
})

describe('an upstream without Range whose Content-Length is longer than the body it sends', () => {
  it('fails after the body ends short at the same byte twice, not after a minute of whole-file retries', async () => {
    const body = Buffer.alloc(2 * MiB, 3)
    let requests = 0
    // Raw HTTP: Node's own server refuses to end a response short of its Content-Length.
    const server: Server = createServer(socket => {
      socket.on('data', () => {
        requests++
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length + 1000}\r\netag: "liar"\r\n\r\n`)
        socket.end(body)
      })
      socket.on('error', () => {})
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    track({ close: async () => { await new Promise(resolve => server.close(resolve)) } })
    const rig = track(await makeRig())
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/liar.bin`)
    const started = Date.now()
    const got = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: MiB, concurrency: 4 })
    if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
    await expect(sha256Of(got.open(0, body.length + 1000))).rejects.toThrow()
    got.release()
    await until(() => rig.fetcher.activeDownloads().length === 0)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(requests).toBeLessThanOrEqual(3)
  })
})
