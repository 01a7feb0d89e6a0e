import { write, writeSync } from 'node:fs'

/** A synchronous write slower than this blocked (dirty-page throttling, slow disk)… */
const BLOCKED_MS = 25
/**
 * …once this many did. A single slow write is as often the process losing the CPU mid-call on a busy
 * machine, and moving over for good then costs the thread pool's overhead on every later chunk.
 */
const BLOCKED_WRITES = 3

export interface WriteOptions {
  /** Write on the thread pool even while writes are synchronous (a large chunk from a fast source). */
  behind?: boolean
}

/**
 * Positional writes of body chunks into a download's temp file. The writes land in the page cache,
 * so a synchronous pwrite costs one system call, where the thread pool costs a handoff, a wakeup
 * and a completion signal per chunk (about a quarter of a parallel download's CPU). Once writes
 * block, this file's writes move to the thread pool for good, so the event loop stays responsive
 * on a slow disk. A large chunk may go there anyway (`behind`): copying a MiB into fresh page-cache
 * pages costs milliseconds of system CPU, which the event loop then spends on the next bytes instead.
 */
export class FileWriter {
  private readonly fd: number
  private sync = true
  private slowWrites = 0
  private pending = 0
  private readonly onIdle: () => void

  /**
   * `synchronous: false` starts on the thread pool (tests, or disks known to be slow). `onIdle` is
   * called when the last write on the thread pool finished: the file may be closed only then.
   */
  constructor (fd: number, init: { synchronous?: boolean, onIdle?: () => void } = {}) {
    this.fd = fd
    this.sync = init.synchronous ?? true
    this.onIdle = init.onIdle ?? (() => {})
  }

  get synchronous (): boolean {
    return this.sync
  }

  /** No write is on the thread pool (closing the file now cannot send one to another file). */
  get idle (): boolean {
    return this.pending === 0
  }

  /**
   * Writes all of `buf` at `position`. Returns true when the bytes are written already (`cb` is not
   * called); false when `cb` reports later (`buf` must stay unchanged until then). A synchronous
   * failure throws.
   */
  write (buf: Buffer, position: number, cb: (err: Error | null) => void, options: WriteOptions = {}): boolean {
    if (!this.sync || options.behind === true) {
      this.pending++
      writeFully(this.fd, buf, position, (err) => {
        this.pending--
        cb(err)
        if (this.pending === 0) this.onIdle()
      })
      return false
    }
    const t0 = performance.now()
    let done = 0
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, position + done)
    if (performance.now() - t0 > BLOCKED_MS && ++this.slowWrites >= BLOCKED_WRITES) this.sync = false
    return true
  }
}

/** Positional write of the whole buffer on the thread pool (callback API: no promise per chunk). */
function writeFully (fd: number, buf: Buffer, position: number, cb: (err: Error | null) => void): void {
  let done = 0
  const step = (): void => {
    write(fd, buf, done, buf.length - done, position + done, (err, n) => {
      if (err !== null) { cb(err); return }
      done += n
      if (done < buf.length) step()
      else cb(null)
    })
  }
  step()
}
