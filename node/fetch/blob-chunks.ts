import { close, open, read } from 'node:fs'
import type { BufferPool } from './buffer-pool.ts'

/**
 * A blob range read into buffers lent by a pool: the HTTP layer writes each one to the client's socket
 * and gives it back once written, so serving allocates nothing per read.
 */
export interface BlobChunks {
  /** The next bytes, in a buffer lent to the caller (give it to `recycle` once written); null after the last byte. */
  next: () => Promise<Buffer | null>
  /** Takes back a buffer `next` returned, once nothing reads it any more. */
  recycle: (buf: Buffer) => void
  /** Stops early or after the end (idempotent): releases the file. */
  close: () => void
}

/** Walks a blob range: each `next` reads the following bytes into `take(len)`, or returns a buffer of its own. */
export interface ChunkCursor {
  next: (take: (len: number) => Buffer) => Promise<Buffer | null>
  /** Idempotent; resolves (when it returns a promise) once the file is closed. */
  close: () => void | Promise<void>
}

/** A cursor's bytes as BlobChunks, in `size`-byte buffers of `pool`. */
export function pooledChunks (cursor: ChunkCursor, pool: BufferPool, size: number): BlobChunks {
  const take = (): Buffer => pool.take(size)
  return {
    next: async () => await cursor.next(take),
    recycle: (buf) => { pool.give(buf) },
    close: () => { void cursor.close() }
  }
}

/** Read size for committed blobs: large enough for few system calls and thread-pool handoffs. */
export const FILE_CHUNK = 1 << 20

/**
 * [start, end) of a committed blob file, read through the thread pool (it may not be in the page
 * cache). `onClose(bytesRead)` runs once when closed.
 */
export class FileCursor implements ChunkCursor {
  bytesRead = 0
  private readonly path: string
  private readonly end: number
  private readonly chunk: number
  private readonly onClose: ((bytesRead: number) => void) | undefined
  private pos: number
  private fd: Promise<number> | null = null
  private reading: Promise<unknown> | null = null
  private closing: Promise<void> | null = null

  constructor (path: string, start: number, end: number, init: { chunk?: number, onClose?: (bytesRead: number) => void } = {}) {
    this.path = path
    this.pos = start
    this.end = end
    this.chunk = init.chunk ?? FILE_CHUNK
    this.onClose = init.onClose
  }

  async next (take: (len: number) => Buffer): Promise<Buffer | null> {
    if (this.closing !== null) return null
    const len = Math.min(this.chunk, this.end - this.pos)
    if (len <= 0) return null
    this.fd ??= new Promise((resolve, reject) => { open(this.path, 'r', (err, fd) => { if (err !== null) reject(err); else resolve(fd) }) })
    const fd = await this.fd
    if (this.closing !== null) return null
    const buf = take(len)
    const reading = new Promise<number>((resolve, reject) => {
      read(fd, buf, 0, len, this.pos, (err, n) => { if (err !== null) reject(err); else resolve(n) })
    })
    this.reading = reading.catch(() => {})
    const n = await reading
    if (n === 0) throw new Error('cached blob is shorter than its index entry')
    this.pos += n
    this.bytesRead += n
    return n === buf.length ? buf : buf.subarray(0, n)
  }

  close (): Promise<void> {
    this.closing ??= this.closeFile()
    return this.closing
  }

  private async closeFile (): Promise<void> {
    this.onClose?.(this.bytesRead)
    if (this.fd === null) return
    // Never close the descriptor under a read in flight (its number could be reused meanwhile).
    await this.reading
    const fd = await this.fd.catch(() => null)
    if (fd !== null) await new Promise(resolve => { close(fd, resolve) })
  }
}
