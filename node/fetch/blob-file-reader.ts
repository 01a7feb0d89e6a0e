import { close, open, read } from 'node:fs'
import { Readable } from 'node:stream'
import type { GcPacer } from './gc-pacer.ts'

/** Read size for cached blobs: large enough for few system calls, small enough for malloc to recycle. */
export const HIT_READ_CHUNK = 1 << 20

/**
 * Streams [start, end) of a committed blob file (a cache hit). Reads go through the thread pool (the
 * file may not be in the page cache); each read's fresh buffer is counted by the GC pacer so dead
 * buffers are freed between full collections. `onClose(bytesRead)` runs once when the stream closes.
 */
export class BlobFileReader extends Readable {
  bytesRead = 0
  private readonly path: string
  private readonly end: number
  private readonly pacer: GcPacer
  private readonly chunk: number
  private pos: number
  private fd: number | null = null
  private reading = false
  private closeWhenRead: (() => void) | null = null

  constructor (path: string, start: number, end: number, pacer: GcPacer, chunk = HIT_READ_CHUNK) {
    super({ highWaterMark: chunk })
    this.path = path
    this.pos = start
    this.end = end
    this.pacer = pacer
    this.chunk = chunk
  }

  override _construct (cb: (err?: Error | null) => void): void {
    open(this.path, 'r', (err, fd) => {
      if (err !== null) { cb(err); return }
      this.fd = fd
      cb()
    })
  }

  override _read (): void {
    const len = Math.min(this.chunk, this.end - this.pos)
    if (len <= 0 || this.fd === null) { this.push(null); return }
    const buf = Buffer.allocUnsafe(len)
    this.reading = true
    read(this.fd, buf, 0, len, this.pos, (err, n) => {
      this.reading = false
      if (this.closeWhenRead !== null) { this.closeWhenRead(); return }
      if (err !== null) { this.destroy(err); return }
      if (n === 0) { this.destroy(new Error('cached blob is shorter than its index entry')); return }
      this.pos += n
      this.bytesRead += n
      this.pacer.moved(n)
      this.push(n === len ? buf : buf.subarray(0, n))
    })
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    const fd = this.fd
    this.fd = null
    if (fd === null) { cb(err); return }
    // Never close the descriptor under a read in flight (its number could be reused meanwhile).
    const closeNow = (): void => { close(fd, () => { cb(err) }) }
    if (this.reading) this.closeWhenRead = closeNow
    else closeNow()
  }
}
