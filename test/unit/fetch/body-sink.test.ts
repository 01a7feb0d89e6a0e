import { open, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { drainBody } from '../../../node/fetch/body-sink.ts'
import { FileWriter } from '../../../node/fetch/file-writer.ts'
import type { Assignment } from '../../../node/fetch/pieces.ts'
import type { SourceResponse } from '../../../node/fetch/upstream-source.ts'

let dir: string | null = null
afterEach(async () => {
  if (dir !== null) await rm(dir, { recursive: true, force: true })
  dir = null
})

describe('drainBody', () => {
  it('a body that ends while its last chunk is being written on the thread pool still lands every byte', async () => {
    dir = await mkdtemp(join(tmpdir(), 'aimirror-sink-'))
    const fh = await open(join(dir, 'f'), 'w+')
    try {
      const data = Buffer.alloc(300_000)
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff
      const START = 1000
      const body = new PassThrough()
      const res = {
        status: 206,
        headers: {},
        body: body as unknown as SourceResponse['body'],
        url: new URL('http://upstream/f'),
        contentRange: { start: START, end: START + data.length - 1, total: START + data.length }
      } satisfies SourceResponse
      const a: Assignment = { id: 1, start: START, pos: START, end: START + data.length, duplicate: false, duplicated: false, lastProgress: 0 }
      const landed: Array<[number, number]> = []
      // The whole body is buffered and ended before draining starts: its 'end' comes right after the last chunk.
      for (let i = 0; i < data.length; i += 64 * 1024) body.write(data.subarray(i, i + 64 * 1024))
      body.end()
      const { off, bodyEnd } = await drainBody(res, a, {
        writer: new FileWriter(fh.fd, { synchronous: false }),
        settled: () => false,
        enough: () => a.pos >= a.end,
        received: () => {},
        landed: (at, chunk) => { landed.push([at, chunk.length]) }
      })
      expect(off).toBe(bodyEnd)
      expect(a.pos).toBe(a.end)
      expect(landed.reduce((n, [, len]) => n + len, 0)).toBe(data.length)
      const onDisk = (await readFile(join(dir, 'f'))).subarray(START)
      expect(onDisk.equals(data)).toBe(true)
    } finally {
      await fh.close()
    }
  })
})
