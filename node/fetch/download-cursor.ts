import type { FileHandle } from 'node:fs/promises'
import { readSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { deadline } from '../abort.ts'
import type { InFlightBlob } from './acquire-types.ts'
import type { ChunkCursor } from './blob-chunks.ts'
import type { Download } from './download.ts'
import { hashFileRange } from './file-hash.ts'
import { gatedIfWhole } from './passthrough.ts'

/**
 * Read size: fresh buffers fault in far fewer pages at 128 KiB than at 1 MiB, and a client at the
 * download's front gets bytes in small steps.
 */
export const DOWNLOAD_CHUNK = 128 << 10

/** Why a cursor's own waits end when it is closed. */
const CURSOR_CLOSED = Object.freeze(new Error('reader closed'))

export interface DownloadCursorOptions {
  /**
   * A peer reading along: it gets every byte on disk (it verifies the blob itself), and it is ended
   * with an error after `idleMs` without a new byte for it nor for the connection on its way to it
   * (so it can fetch the rest elsewhere).
   */
  peer?: { idleMs: number }
}

/**
 * Walks [start, end) of a blob that is still downloading: each `next` returns the following bytes as
 * soon as they are on disk, sleeping on the download's wakeups (no polling), and the final byte of the
 * file only after the download's digest has been verified. When the download fails for lack of disk
 * space, the rest comes straight from the upstream.
 */
export class DownloadCursor implements ChunkCursor {
  /** Bytes returned so far. */
  bytesRead = 0
  private readonly download: Download
  private readonly start: number
  private readonly end: number
  private pos: number
  private readonly fh: FileHandle
  private readonly ac = new AbortController()
  private holdsFile = true
  private upstream: { stream: Readable, chunks: AsyncIterator<Buffer> } | null = null
  private readonly peerIdleMs: number | null
  private lastByteAt = Date.now()
  private closed = false

  constructor (download: Download, start: number, end: number, options: DownloadCursorOptions = {}) {
    this.download = download
    this.start = start
    this.pos = start
    this.end = end
    this.peerIdleMs = options.peer?.idleMs ?? null
    this.fh = download.retainFile()
  }

  /**
   * The next bytes: read from disk into `take(len)` (a buffer of at least `len` bytes), or a chunk of
   * the upstream's own; null after the last one. Throws when the download failed.
   */
  async next (take: (len: number) => Buffer): Promise<Buffer | null> {
    const d = this.download
    for (;;) {
      if (this.closed) return null
      if (this.upstream !== null) {
        const r = await this.upstream.chunks.next()
        if (r.done === true) return null
        this.pos += r.value.length
        this.bytesRead += r.value.length
        return r.value
      }
      const size = d.totalSize
      const end = size === null ? this.end : Math.min(this.end, size)
      const peer = this.peerIdleMs !== null
      if (this.pos >= end && (peer || d.verified || end < (size ?? Number.POSITIVE_INFINITY))) return null
      if (d.state === 'failed') {
        if (!d.passThroughOnFailure || peer) throw d.error ?? new Error('download failed')
        this.passThrough(end)
        continue
      }
      const limit = peer ? d.view.peerReadableEnd(this.pos, end) : d.view.readableEnd(this.pos, end)
      if (limit > this.pos) {
        this.lastByteAt = Date.now()
        const len = Math.min(limit - this.pos, DOWNLOAD_CHUNK)
        const buf = take(len)
        // Synchronous: these bytes were just written and sit in the page cache.
        const n = readSync(this.fh.fd, buf, 0, len, this.pos)
        if (n <= 0) throw new Error('short read from download file')
        this.pos += n
        this.bytesRead += n
        return n === buf.length ? buf : buf.subarray(0, n)
      }
      await this.waitForBytes(peer)
    }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    // With a reason: abort() without one builds a DOMException and its stack trace, once per reader
    // (0.05–0.1 s of CPU per node in a shared pull). Nothing reads the reason.
    this.ac.abort(CURSOR_CLOSED)
    this.upstream?.stream.destroy()
    this.releaseFile()
  }

  private async waitForBytes (peer: boolean): Promise<void> {
    const d = this.download
    if (!peer) {
      await d.view.waitFor(this.pos, this.ac.signal)
      return
    }
    // A connection still landing bytes on its way to this offset keeps the peer waiting: its bytes
    // are coming, and fetching them elsewhere would take them from the upstream twice.
    const left = Math.max(this.lastByteAt, d.progressTowards(this.pos)) + (this.peerIdleMs as number) - Date.now()
    if (left <= 0) throw new Error('no new bytes for the peer in time')
    const wait = deadline(left, this.ac.signal)
    try {
      await d.view.waitFor(this.pos, wait.signal, { peer: true })
    } finally {
      wait.clear()
    }
  }

  private releaseFile (): void {
    if (!this.holdsFile) return
    this.holdsFile = false
    this.download.releaseFile()
  }

  /**
   * The download failed for lack of disk space: the rest comes straight from the upstream. A reader of
   * the whole blob with a known digest still holds its last bytes until they match: the bytes it was
   * given from disk are read back from the file it holds (unlinked or not) and hashed first.
   */
  private passThrough (end: number): void {
    const d = this.download
    const rest = d.openUpstream(this.pos, end)
    const given = this.pos
    const stream = gatedIfWhole(rest, { start: this.start, end, size: d.totalSize, expected: d.expected }, async (hash) => {
      if (await hashFileRange(this.fh, 0, given, hash) < given) throw new Error('short read from download file')
      this.releaseFile()
    })
    if (stream === rest) this.releaseFile()
    this.upstream = { stream, chunks: (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]() }
  }
}

/**
 * What peers see of a download in flight, once its size is known and its bytes go to a file: its
 * pieces, what is on disk, and cursors that read along (null before then, and once it settled).
 */
export function inFlightView (d: Download): InFlightBlob | null {
  const meta = d.meta
  if (meta === null || meta.size === null || (d.state !== 'running' && d.state !== 'verified')) return null
  return {
    size: meta.size,
    meta,
    cursor: (start, end, idleMs) => {
      if (d.settled) return null
      try {
        return new DownloadCursor(d, start, end, { peer: { idleMs } })
      } catch {
        return null
      }
    },
    pieces: () => d.pieces(),
    written: max => d.written.list(max),
    shareable: d.shareable
  }
}
