import { Readable } from 'node:stream'
import { DOWNLOAD_CHUNK, DownloadCursor } from './download-cursor.ts'
import type { DownloadCursorOptions } from './download-cursor.ts'
import type { Download } from './download.ts'

export type ProgressiveReaderOptions = DownloadCursorOptions

/**
 * Streams [start, end) of a blob that is still downloading (see DownloadCursor) as a Readable, in
 * fresh buffers counted by the GC pacer: for consumers that keep chunks (peers reading along, piped
 * transforms). Clients are served through BlobChunks instead, in recycled buffers.
 */
export class ProgressiveReader extends Readable {
  private readonly download: Download
  private readonly cursor: DownloadCursor
  private running = false

  constructor (download: Download, start: number, end: number, options: ProgressiveReaderOptions = {}) {
    super({ highWaterMark: 4 * DOWNLOAD_CHUNK })
    this.download = download
    this.cursor = new DownloadCursor(download, start, end, options)
  }

  override _read (): void {
    if (this.running) return
    this.running = true
    this.loop().catch((err: unknown) => {
      this.destroy(err instanceof Error ? err : new Error(String(err)))
    })
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.cursor.close()
    cb(err)
  }

  /**
   * Pushes until the stream is full or the end. `running` is cleared synchronously on the way out
   * (finally): the next `_read` may come from a tick queued before this promise settles.
   */
  private async loop (): Promise<void> {
    const pacer = this.download.pacer
    const take = (len: number): Buffer => {
      pacer.moved(len)
      return Buffer.allocUnsafe(len)
    }
    try {
      while (!this.destroyed) {
        const chunk = await this.cursor.next(take)
        if (this.destroyed) return
        if (chunk === null) { this.push(null); return }
        if (!this.push(chunk)) return
      }
    } finally {
      this.running = false
    }
  }
}
