import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FILE_CHUNK, FileCursor } from '../../../node/fetch/blob-chunks.ts'
import { CursorReader } from '../../../node/fetch/cursor-reader.ts'
import { GcPacer } from '../../../node/fetch/gc-pacer.ts'

let dir = ''
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'aimirror-reader-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

/** A committed file's range as a Readable, as a cache hit's `open` makes it. */
function reader (path: string, start: number, end: number, pacer: GcPacer, chunk = FILE_CHUNK): CursorReader & { file: FileCursor } {
  const file = new FileCursor(path, start, end, { chunk })
  return Object.assign(new CursorReader(file, pacer, chunk), { file })
}

async function collect (r: CursorReader): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of r) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length

describe('FileCursor through a CursorReader', () => {
  it('streams exactly [start, end) in chunks and counts the bytes for the pacer', async () => {
    const data = randomBytes(300_000)
    const path = join(dir, 'blob')
    await writeFile(path, data)
    let collected = 0
    const pacer = new GcPacer({ gc: () => { collected++ }, everyBytes: 50_000 })
    const r = reader(path, 1234, 250_000, pacer, 64 * 1024)
    expect((await collect(r)).equals(data.subarray(1234, 250_000))).toBe(true)
    expect(r.file.bytesRead).toBe(250_000 - 1234)
    expect(collected).toBeGreaterThanOrEqual(4)
  })

  it('an empty range ends at once; a destroyed reader closes its file', async () => {
    const path = join(dir, 'blob')
    await writeFile(path, randomBytes(1 << 20))
    expect((await collect(reader(path, 10, 10, new GcPacer()))).length).toBe(0)
    const before = await openFds()
    const r = reader(path, 0, 1 << 20, new GcPacer(), 4096)
    await new Promise<void>(resolve => r.once('data', () => { resolve() }))
    r.destroy()
    await new Promise<void>(resolve => r.once('close', () => { resolve() }))
    expect(await openFds()).toBe(before)
  })

  it('a file shorter than announced fails the stream', async () => {
    const path = join(dir, 'blob')
    await writeFile(path, randomBytes(1000))
    await expect(collect(reader(path, 0, 2000, new GcPacer()))).rejects.toThrow()
  })
})
