import type { EventEmitter } from 'node:events'
import { BodyEvents } from './body-events.ts'

/** What a body asks of the connection it comes from. */
export interface BodyConnection {
  /** Read again (the consumer resumed). */
  resume: () => void
  /** The consumer gave up before the end: the connection cannot be reused. */
  abandon: () => void
}

/**
 * A response body whose 'data' chunks are views into the connection's one reused read buffer: valid
 * only while the listener runs (it must write or copy them before returning). It has the part of a
 * Readable's surface the fetch engine uses: 'data' / 'end' / 'error' / 'close', pause, resume, destroy.
 * Bytes that arrive while nobody reads (before the first 'data' listener, or while paused) are copied
 * and the connection stops reading until the consumer resumes.
 */
export class VolatileBody extends BodyEvents {
  private readonly conn: BodyConnection
  private flowing = false
  private paused = false
  private pending: Buffer | null = null
  private complete = false
  private flushing = false

  constructor (conn: BodyConnection) {
    super()
    this.conn = conn
  }

  override on (event: string | symbol, listener: Parameters<EventEmitter['on']>[1]): this {
    super.on(event, listener)
    // Like a Readable: a 'data' listener starts the flow (on the next tick, once all listeners are on).
    if (event === 'data' && !this.flowing && !this.paused) {
      this.flowing = true
      this.scheduleFlush()
    }
    return this
  }

  pause (): this {
    this.paused = true
    return this
  }

  resume (): this {
    if (!this.paused && this.flowing) return this
    this.paused = false
    this.flowing = true
    this.scheduleFlush()
    return this
  }

  /**
   * From the connection: `view` is only valid during this call. Returns whether the connection may
   * read on (false: it waits for `resume`).
   */
  deliver (view: Buffer): boolean {
    if (this.destroyed) return false
    if (this.flowing && !this.paused && this.pending === null && !this.flushing) {
      this.emit('data', view)
      return this.flowing && !this.paused && !this.destroyed
    }
    this.keep(Buffer.from(view))
    return false
  }

  /** From the connection: bytes that are the consumer's to keep (the part read with the head). */
  keep (bytes: Buffer): void {
    if (bytes.length === 0) return
    this.pending = this.pending === null ? bytes : Buffer.concat([this.pending, bytes])
  }

  /** From the connection: every byte the head announced was delivered (or kept). */
  finish (): void {
    this.complete = true
    this.scheduleFlush()
  }

  /** From the connection: it broke before the end. */
  fail (err: Error): void {
    if (this.destroyed) return
    this.pending = null
    this.settle(err)
  }

  protected abandon (): void {
    if (!this.complete) this.conn.abandon()
    this.pending = null
  }

  private scheduleFlush (): void {
    if (this.flushing) return
    this.flushing = true
    process.nextTick(() => {
      this.flushing = false
      this.flush()
    })
  }

  /** Hands over what was kept, then the end, or asks the connection for more. */
  private flush (): void {
    if (this.destroyed || !this.flowing || this.paused) return
    const kept = this.pending
    if (kept !== null) {
      this.pending = null
      this.emit('data', kept)
      if (this.destroyed || this.paused) return
    }
    if (this.complete) {
      if (!this.readableEnded) this.ended()
      return
    }
    this.conn.resume()
  }
}
