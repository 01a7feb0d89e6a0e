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

/** Read size for committed blobs: large enough for few system calls and thread-pool handoffs. */
export const FILE_CHUNK = 1 << 20

/**
 * [start, end) of a committed blob file, read through the thread pool (it may not be in the page
 * cache). `onClose(bytesRead)` runs once when closed.
 */
export class FileChunks implements BlobChunks {
  private readonly path: string
  private readonly pool: BufferPool
  private readonly end: number
  private readonly onClose: (bytesRead: number) => void
  private pos: number
  private bytesRead = 0
  private fd: Promise<number> | null = null
  private reading = false
  private closed = false

  constructor (path: string, start: number, end: number, components: { pool: BufferPool, onClose: (bytesRead: number) => void }) {
    this.path = path
    this.pos = start
    this.end = end
    this.pool = components.pool
    this.onClose = components.onClose
  }

  async next (): Promise<Buffer | null> {
    if (this.closed) throw new Error('blob chunks closed')
    const len = Math.min(FILE_CHUNK, this.end - this.pos)
    if (len <= 0) return null
    this.fd ??= new Promise((resolve, reject) => { open(this.path, 'r', (err, fd) => { if (err !== null) reject(err); else resolve(fd) }) })
    const fd = await this.fd
    if (this.closed) return null
    const buf = this.pool.take(FILE_CHUNK)
    this.reading = true
    const n = await new Promise<number>((resolve, reject) => {
      read(fd, buf, 0, len, this.pos, (err, got) => {
        this.reading = false
        if (this.closed) this.closeFd()
        if (err !== null) reject(err)
        else resolve(got)
      })
    })
    if (n === 0) { this.pool.give(buf); throw new Error('cached blob is shorter than its index entry') }
    this.pos += n
    this.bytesRead += n
    return buf.subarray(0, n)
  }

  recycle (buf: Buffer): void {
    this.pool.give(buf)
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    // Never close the descriptor under a read in flight (its number could be reused meanwhile).
    if (!this.reading) this.closeFd()
    this.onClose(this.bytesRead)
  }

  private closeFd (): void {
    const fd = this.fd
    this.fd = null
    fd?.then(n => { close(n, () => {}) }, () => {})
  }
}
