import { EventEmitter } from 'node:events'

/**
 * The end of a response body as a Readable shows it ('end' or 'error', then 'close'; `destroyed`,
 * `errored`, `readableEnded`), for the fetch engine's bodies that are not streams (VolatileBody and
 * the bodies built on one).
 */
export abstract class BodyEvents extends EventEmitter {
  destroyed = false
  errored: Error | null = null
  readableEnded = false

  /**
   * Stops the body early (its source lets go first). Destroyed before the source is told, so a failure
   * the source reports back meanwhile is not taken for this body's own.
   */
  destroy (err?: Error): this {
    if (this.destroyed) return this
    this.destroyed = true
    this.abandon()
    this.settle(err)
    return this
  }

  /** Drops the rest of the body (its connection is closed rather than drained). */
  async dump (): Promise<void> {
    this.destroy()
  }

  /** What the body lets go of when it is stopped early. */
  protected abstract abandon (): void

  /** Ends destroyed: 'error' (with `err`, when anyone listens), then 'close'. */
  protected settle (err?: Error): void {
    this.destroyed = true
    if (err !== undefined) {
      this.errored = err
      if (this.listenerCount('error') > 0) this.emit('error', err)
    }
    this.emit('close')
  }

  /** Ends after its last byte: 'end', then 'close'. */
  protected ended (): void {
    this.readableEnded = true
    this.emit('end')
    this.destroyed = true
    this.emit('close')
  }
}
