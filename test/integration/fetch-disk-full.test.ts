import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { GeneratedContent, generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { FileWriter } from '../../node/fetch/file-writer.ts'
import { digestIdentity, urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of, until } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'
import { createHash } from 'node:crypto'

const MiB = 1 << 20
const SIZE = 4 * MiB + 7

let server: FileServer | undefined
let rig: Rig | undefined

const track = closedAfterEach()

/** A temp-file writer on a disk that fills up (or fails with `code`) after `room` bytes. */
function fillingDisk (room: number, code = 'ENOSPC'): (fd: number, init: { synchronous?: boolean }) => FileWriter {
  let used = 0
  return (fd, init) => {
    const real = new FileWriter(fd, init)
    const w = Object.create(real) as FileWriter
    w.write = (buf, position, cb, options) => {
      used += buf.length
      if (used > room) throw Object.assign(new Error(`${code}: write failed`), { code })
      return real.write(buf, position, cb, options)
    }
    return w
  }
}

async function sliceSha (start: number, end: number, seed = 9): Promise<string> {
  const h = createHash('sha256')
  for (const c of new GeneratedContent(SIZE, seed).chunks(start, end - 1, 65536)) h.update(await c)
  return h.digest('hex')
}

describe('disk full in the middle of a download', () => {
  // Full, or gone read-only (ext4 after an error), or failing (an I/O error).
  it.each(['ENOSPC', 'EROFS', 'EIO'])('(%s) readers carry on from the upstream, uncached, and the partial is dropped', async (code) => {
    server = track(await startFileServer({ files: { '/d.bin': { size: SIZE, seed: 9 } }, perConnectionBps: 8 * MiB }))
    rig = track(await makeRig({}, { openWriter: fillingDisk(1.5 * MiB, code) }))
    const url = new URL(server.url + '/d.bin')
    const a = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 256 * 1024, concurrency: 2 })
    if (a.kind !== 'blob') throw new Error('expected blob')
    expect(a.from).toBe('download')
    const [whole, tail] = await Promise.all([sha256Of(a.open(0, SIZE)), sha256Of(a.open(3 * MiB, SIZE))])
    a.release()
    expect(whole.bytes).toBe(SIZE)
    expect(whole.hex).toBe(generatedSha256(SIZE, 9))
    expect(tail.hex).toBe(await sliceSha(3 * MiB, SIZE))
    expect(rig.store.stats().file_count).toBe(0)
    expect(await rig.store.getPartial(urlIdentity(url).key)).toBeUndefined()
    await until(async () => (await readdir(join(rig?.dir ?? '', 'tmp'))).length === 0)
  })

  it('a reader of the whole blob that goes on from the upstream still gets no complete response with bytes that fail its digest', async () => {
    server = track(await startFileServer({ files: { '/e.bin': { size: SIZE, seed: 10 } }, perConnectionBps: 8 * MiB }))
    const url = new URL(server.url + '/e.bin')
    const read = async (hex: string): Promise<{ whole: Promise<{ bytes: number, hex: string }>, tail: Promise<{ bytes: number, hex: string }> }> => {
      rig = track(await makeRig({}, { openWriter: fillingDisk(1.5 * MiB) }))
      const a = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex }), { url }, { chunkSize: 256 * 1024, concurrency: 2 })
      if (a.kind !== 'blob') throw new Error('expected blob')
      expect(a.from).toBe('download')
      const whole = sha256Of(a.open(0, SIZE))
      const tail = sha256Of(a.open(3 * MiB, SIZE))
      void Promise.allSettled([whole, tail]).then(() => { a.release() })
      return { whole, tail }
    }
    // The bytes (from disk, then from the upstream) do not match the digest: the whole stream fails before its end.
    const wrong = await read('ab'.repeat(32))
    await expect(wrong.whole).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' })
    // A range has no digest to check, as with any Range request.
    expect((await wrong.tail).hex).toBe(await sliceSha(3 * MiB, SIZE, 10))
    // The right digest: the bytes given from disk are hashed with the upstream's, and the stream completes.
    const right = await read(generatedSha256(SIZE, 10))
    expect(await right.whole).toEqual({ bytes: SIZE, hex: generatedSha256(SIZE, 10) })
    expect((await right.tail).hex).toBe(await sliceSha(3 * MiB, SIZE, 10))
  })
})
