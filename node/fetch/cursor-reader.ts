import { Readable } from 'node:stream'
import type { ChunkCursor } from './blob-chunks.ts'
import type { GcPacer } from './gc-pacer.ts'

/**
 * A cursor's bytes as a Readable, in fresh buffers counted by the GC pacer: for consumers that keep
 * chunks (peers reading along, piped transforms). Clients' responses take BlobChunks instead, in
 * recycled buffers.
 */
export class CursorReader extends Readable {
  private readonly cursor: ChunkCursor
  private readonly pacer: GcPacer
  private running = false

  constructor (cursor: ChunkCursor, pacer: GcPacer, highWaterMark: number) {
    super({ highWaterMark })
    this.cursor = cursor
    this.pacer = pacer
  }

  override _read (): void {
    if (this.running) return
    this.running = true
    this.loop().catch((err: unknown) => {
      this.destroy(err instanceof Error ? err : new Error(String(err)))
    })
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    Promise.resolve(this.cursor.close()).then(() => { cb(err) }, () => { cb(err) })
  }

  /**
   * Pushes until the stream is full or the end. `running` is cleared synchronously on the way out
   * (finally): the next `_read` may come from a tick queued before this promise settles.
   */
  private async loop (): Promise<void> {
    const take = (len: number): Buffer => {
      this.pacer.moved(len)
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
