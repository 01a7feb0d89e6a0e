import { open, mkdtemp, readFile, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EventEmitter } from 'node:events'
import { writeSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { drainBody, WRITE_BEHIND_MIN } from '../../../node/fetch/body-sink.ts'
import { FileWriter } from '../../../node/fetch/file-writer.ts'
import type { Assignment } from '../../../node/fetch/pieces.ts'
import type { SourceResponse } from '../../../node/fetch/upstream-source.ts'

let dir: string | null = null
afterEach(async () => {
  if (dir !== null) await rm(dir, { recursive: true, force: true })
  dir = null
})

/** Runs `fn` on a fresh temp file (its handle and path), closed after. */
async function withFile (fn: (fh: FileHandle, path: string) => Promise<void>): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), 'aimirror-sink-'))
  const path = join(dir, 'f')
  const fh = await open(path, 'w+')
  try {
    await fn(fh, path)
  } finally {
    await fh.close()
  }
}

/** A 206 of [start, end) with `body`, and the assignment that asks for exactly that. */
function ranged (body: unknown, start: number, end: number, flags: { volatile?: true, unverified?: true }): { res: SourceResponse, a: Assignment } {
  const res: SourceResponse = {
    status: 206,
    headers: {},
    body: body as SourceResponse['body'],
    ...flags,
    url: new URL('http://source/f'),
    contentRange: { start, end: end - 1, total: end }
  }
  return { res, a: { id: 1, start, pos: start, end, duplicate: false, duplicated: false, lastProgress: 0, startedAt: 0 } }
}

describe('drainBody', () => {
  it('a body that ends while its last chunk is being written on the thread pool still lands every byte', async () => {
    await withFile(async (fh, path) => {
      const data = Buffer.alloc(300_000)
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff
      const START = 1000
      const body = new PassThrough()
      const { res, a } = ranged(body, START, START + data.length, {})
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
      const onDisk = (await readFile(path)).subarray(START)
      expect(onDisk.equals(data)).toBe(true)
    })
  })

  it('large chunks go to the thread pool while the body goes on, and land in order with their own bytes', async () => {
    await withFile(async (fh, path) => {
      const START = 4096
      // Large units with small chunks between them: a small one written at once lands after the pending large ones.
      const sizes = [WRITE_BEHIND_MIN, WRITE_BEHIND_MIN * 2, 1000, WRITE_BEHIND_MIN, 70_000, WRITE_BEHIND_MIN + 3, 5]
      const total = sizes.reduce((n, x) => n + x, 0)
      const data = Buffer.alloc(total)
      for (let i = 0; i < total; i++) data[i] = (i * 31 + 7) & 0xff
      const body = new ScribblingBody(data, sizes)
      const { res, a } = ranged(body, START, START + total, { volatile: true })
      const writer = new LaggingWriter(fh.fd)
      const landed: number[] = []
      const wrong: number[] = []
      let drained = false
      const drain = drainBody(res, a, {
        writer: writer as unknown as FileWriter,
        settled: () => false,
        enough: () => a.pos >= a.end,
        received: () => {},
        landed: (at, chunk) => {
          landed.push(at)
          if (a.pos !== at + chunk.length) wrong.push(at)
          if (!chunk.equals(data.subarray(at - START, at - START + chunk.length))) wrong.push(at)
        }
      }).then(r => { drained = true; return r })
      await drain
      expect(drained).toBe(true)
      expect(wrong).toEqual([])
      // In order, every chunk once, although the second large write finished before the first.
      const starts = sizes.map((_, i) => START + sizes.slice(0, i).reduce((n, x) => n + x, 0))
      expect(landed).toEqual(starts)
      expect(writer.behind).toBe(4)
      expect(writer.maxPending).toBe(2)
      expect(writer.completed).toBe(4)
      // The body went on while the first large write was pending.
      expect(writer.chunksBeforeFirstDone).toBeGreaterThanOrEqual(2)
      expect(a.pos).toBe(a.end)
      expect((await readFile(path)).subarray(START).equals(data)).toBe(true)
    })
  })

  it('small chunks written at once behind a pending large one wait in memory up to a bound: the body is paused there', async () => {
    await withFile(async (fh, path) => {
      const small = 64 << 10
      const sizes = [WRITE_BEHIND_MIN, ...Array.from({ length: 128 }, () => small)]
      const total = sizes.reduce((n, x) => n + x, 0)
      const data = Buffer.alloc(total)
      for (let i = 0; i < total; i++) data[i] = (i * 7 + 3) & 0xff
      const body = new ScribblingBody(data, sizes)
      const { res, a } = ranged(body, 0, total, { volatile: true })
      let landedBytes = 0
      let mostWaiting = 0
      body.onEmit = (sent) => { mostWaiting = Math.max(mostWaiting, sent - landedBytes) }
      await drainBody(res, a, {
        writer: new LaggingWriter(fh.fd, { delayMs: 300 }) as unknown as FileWriter,
        settled: () => false,
        enough: () => a.pos >= a.end,
        received: () => {},
        landed: (_at, chunk) => { landedBytes += chunk.length }
      })
      // 8 MiB of small chunks came while the first write was pending; at most 4 MiB (and a chunk) waited.
      expect(mostWaiting).toBeGreaterThan(2 << 20)
      expect(mostWaiting).toBeLessThanOrEqual((4 << 20) + small)
      expect(a.pos).toBe(total)
      expect((await readFile(path)).equals(data)).toBe(true)
    })
  })

  it('a write on the thread pool that finds the disk full fails the body as a full disk, once no write of it is pending', async () => {
    await withFile(async (fh) => {
      const sizes = [WRITE_BEHIND_MIN, WRITE_BEHIND_MIN, WRITE_BEHIND_MIN]
      const total = 3 * WRITE_BEHIND_MIN
      const { res, a } = ranged(new ScribblingBody(Buffer.alloc(total, 3), sizes), 0, total, { volatile: true })
      const writer = new LaggingWriter(fh.fd, { failAt: 0 })
      const landed: number[] = []
      await expect(drainBody(res, a, { writer: writer as unknown as FileWriter, settled: () => false, enough: () => a.pos >= a.end, received: () => {}, landed: (at) => { landed.push(at) } }))
        .rejects.toMatchObject({ code: 'ERR_DISK_FULL' })
      // The first write failed; the second (finished first) landed nothing, since the bytes before it are missing.
      expect(writer.completed).toBe(writer.behind)
      expect(landed).toEqual([])
      expect(a.pos).toBe(0)
    })
  })

  it('bytes no one vouched for are written at once, however large (a later write must not overwrite a good copy)', async () => {
    await withFile(async (fh) => {
      const sizes = [WRITE_BEHIND_MIN * 2, WRITE_BEHIND_MIN]
      const total = sizes[0] as number + (sizes[1] as number)
      const data = Buffer.alloc(total, 9)
      const { res, a } = ranged(new ScribblingBody(data, sizes), 0, total, { volatile: true, unverified: true })
      const writer = new LaggingWriter(fh.fd)
      await drainBody(res, a, { writer: writer as unknown as FileWriter, settled: () => false, enough: () => a.pos >= a.end, received: () => {}, landed: () => {} })
      expect(writer.behind).toBe(0)
      expect(a.pos).toBe(total)
    })
  })
})

/**
 * A volatile body: each chunk is a view of one reused buffer, scribbled over once its 'data' event
 * returned (as a socket's read buffer is refilled). Honours pause and resume.
 */
class ScribblingBody extends EventEmitter {
  destroyed = false
  errored: Error | null = null
  private readonly data: Buffer
  private readonly sizes: number[]
  private readonly shared: Buffer
  private index = 0
  private sent = 0
  /** Called after each chunk with the bytes sent so far. */
  onEmit: (sent: number) => void = () => {}
  private paused = true
  private scheduled = false

  constructor (data: Buffer, sizes: number[]) {
    super()
    this.data = data
    this.sizes = sizes
    this.shared = Buffer.alloc(Math.max(...sizes))
  }

  override on (event: string, listener: (...args: unknown[]) => void): this {
    super.on(event, listener)
    if (event === 'data') this.resume()
    return this
  }

  pause (): void { this.paused = true }

  resume (): void {
    this.paused = false
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => { this.scheduled = false; this.flow() })
  }

  destroy (): void { this.destroyed = true }

  private flow (): void {
    while (!this.paused && this.index < this.sizes.length) {
      const n = this.sizes[this.index++] as number
      this.data.copy(this.shared, 0, this.sent, this.sent + n)
      this.sent += n
      this.emit('data', this.shared.subarray(0, n))
      this.onEmit(this.sent)
      this.shared.fill(0xee)
    }
    if (this.index === this.sizes.length && !this.paused) this.emit('end')
  }
}

/**
 * Writes at once, but reports writes asked `behind` later, the second of each pair before the first
 * (a thread pool finishes them in any order).
 */
class LaggingWriter {
  readonly synchronous = true
  behind = 0
  completed = 0
  maxPending = 0
  chunksBeforeFirstDone = 0
  private pending = 0
  private readonly fd: number
  /** The write asked behind with this index fails with ENOSPC. */
  private readonly failAt: number
  /** Every write asked behind takes this long, when set. */
  private readonly delayMs: number | null

  constructor (fd: number, options: { failAt?: number, delayMs?: number } = {}) {
    this.fd = fd
    this.failAt = options.failAt ?? -1
    this.delayMs = options.delayMs ?? null
  }

  write (buf: Buffer, position: number, cb: (err: Error | null) => void, options: { behind?: boolean } = {}): boolean {
    if (this.completed === 0) this.chunksBeforeFirstDone++
    if (options.behind !== true) {
      writeSync(this.fd, buf, 0, buf.length, position)
      return true
    }
    const copy = Buffer.from(buf)
    const index = this.behind++
    const delay = this.delayMs ?? (index % 2 === 0 ? 40 : 5)
    this.maxPending = Math.max(this.maxPending, ++this.pending)
    setTimeout(() => {
      const fails = index === this.failAt
      if (!fails) writeSync(this.fd, copy, 0, copy.length, position)
      this.pending--
      this.completed++
      cb(fails ? Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }) : null)
    }, delay)
    return false
  }
}

describe('FileWriter', () => {
  it('is idle only once no write is on the thread pool, and says so when the last one finished', async () => {
    await withFile(async (fh, path) => {
      let idleCalls = 0
      const w = new FileWriter(fh.fd, { onIdle: () => { idleCalls++ } })
      expect(w.write(Buffer.from('now'), 0, () => {})).toBe(true)
      expect(w.idle).toBe(true)
      const done: Array<Promise<void>> = []
      for (const [i, text] of ['one', 'two'].entries()) {
        done.push(new Promise((resolve, reject) => {
          expect(w.write(Buffer.from(text), 3 + 3 * i, err => { if (err !== null) reject(err); else resolve() }, { behind: true })).toBe(false)
        }))
      }
      expect(w.idle).toBe(false)
      await Promise.all(done)
      expect(w.idle).toBe(true)
      expect(idleCalls).toBe(1)
      expect((await readFile(path)).toString()).toBe('nowonetwo')
    })
  })
})
