import type { FileHandle } from 'node:fs/promises'
import { readSync } from 'node:fs'
import { Readable } from 'node:stream'
import { deadline } from '../abort.ts'
import type { Download } from './download.ts'

/**
 * Fresh read buffers: at 1 MiB glibc serves them from newly mapped pages (about a third of the pages
 * faulted in again per read); at 128 KiB a sixth as many faults.
 */
const READ_CHUNK = 128 << 10

/** Why a reader's own waits end when it is destroyed. */
const READER_CLOSED = Object.freeze(new Error('reader closed'))

export interface ProgressiveReaderOptions {
  /**
   * A peer reading along: it gets every byte on disk (it verifies the blob itself), and it is ended
   * with an error after `idleMs` without a new byte for it nor for the connection on its way to it
   * (so it can fetch the rest elsewhere).
   */
  peer?: { idleMs: number }
}

/**
 * Streams [start, end) of a blob that is still downloading: bytes go out in order as soon as they
 * are on disk, the reader sleeps on the download's wakeups (no polling), and the final byte of the
 * file is released only after the download's digest has been verified.
 */
export class ProgressiveReader extends Readable {
  private readonly download: Download
  private readonly end: number
  private pos: number
  private readonly fh: FileHandle
  private readonly ac = new AbortController()
  private running = false
  private holdsFile = true
  /** Set once the reader went over to the upstream (see passThrough). */
  private upstream: Readable | null = null
  private readonly peerIdleMs: number | null
  private lastByteAt = Date.now()

  constructor (download: Download, start: number, end: number, options: ProgressiveReaderOptions = {}) {
    super({ highWaterMark: 4 * READ_CHUNK })
    this.download = download
    this.pos = start
    this.end = end
    this.peerIdleMs = options.peer?.idleMs ?? null
    this.fh = download.retainFile()
  }

  get position (): number {
    return this.pos
  }

  override _read (): void {
    if (this.upstream !== null) { this.upstream.resume(); return }
    if (this.running) return
    this.running = true
    this.loop().catch((err: unknown) => {
      this.destroy(err instanceof Error ? err : new Error(String(err)))
    })
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    // With a reason: abort() without one builds a DOMException and its stack trace, once per reader
    // (0.05–0.1 s of CPU per node in a shared pull). Nothing reads the reason.
    this.ac.abort(READER_CLOSED)
    this.upstream?.destroy()
    this.releaseFile()
    cb(err)
  }

  private releaseFile (): void {
    if (!this.holdsFile) return
    this.holdsFile = false
    this.download.releaseFile()
  }

  /** The download failed for lack of disk space: the rest comes straight from the upstream. */
  private passThrough (end: number): void {
    const up = this.download.openUpstream(this.pos, end)
    this.upstream = up
    this.releaseFile()
    up.on('data', (chunk: Buffer) => {
      this.pos += chunk.length
      if (!this.push(chunk)) up.pause()
    })
    up.once('end', () => { this.push(null) })
    up.once('error', (err) => { this.destroy(err) })
  }

  /**
   * Pushes until the stream is full or bytes must be waited for. `running` is cleared synchronously
   * on the way out (finally): the next `_read` may come from a tick queued before this promise settles.
   */
  private async loop (): Promise<void> {
    const d = this.download
    try {
      while (!this.destroyed) {
        const size = d.totalSize
        const end = size === null ? this.end : Math.min(this.end, size)
        const peer = this.peerIdleMs !== null
        if (this.pos >= end && (peer || d.verified || end < (size ?? Number.POSITIVE_INFINITY))) {
          this.push(null)
          return
        }
        if (d.state === 'failed') {
          if (d.passThroughOnFailure && !peer) this.passThrough(end)
          else this.destroy(d.error ?? new Error('download failed'))
          return
        }
        const limit = peer ? d.view.peerReadableEnd(this.pos, end) : d.view.readableEnd(this.pos, end)
        if (limit > this.pos) this.lastByteAt = Date.now()
        const shared = limit > this.pos ? d.view.recentAt(this.pos) : null
        if (shared !== null) {
          const part = shared.length > limit - this.pos ? shared.subarray(0, limit - this.pos) : shared
          this.pos += part.length
          if (!this.push(part)) return
        } else if (limit > this.pos) {
          const len = Math.min(limit - this.pos, READ_CHUNK)
          const buf = Buffer.allocUnsafe(len)
          // Synchronous: these bytes were just written and sit in the page cache.
          const bytesRead = readSync(this.fh.fd, buf, 0, len, this.pos)
          if (bytesRead <= 0) throw new Error('short read from download file')
          this.pos += bytesRead
          d.pacer.moved(bytesRead)
          if (!this.push(bytesRead === len ? buf : buf.subarray(0, bytesRead))) return
        } else if (this.peerIdleMs === null) {
          await d.view.waitFor(this.pos, this.ac.signal)
        } else {
          // A connection still landing bytes on its way to this offset keeps the peer waiting: its
          // bytes are coming, and fetching them elsewhere would take them from the upstream twice.
          const left = Math.max(this.lastByteAt, d.progressTowards(this.pos)) + this.peerIdleMs - Date.now()
          if (left <= 0) { this.destroy(new Error('no new bytes for the peer in time')); return }
          const wait = deadline(left, this.ac.signal)
          try {
            await d.view.waitFor(this.pos, wait.signal, { peer: true })
          } finally {
            wait.clear()
          }
        }
      }
    } finally {
      this.running = false
    }
  }
}
