import type { EventEmitter } from 'node:events'
import { BodyEvents } from './body-events.ts'
import type { VolatileBody } from './volatile-body.ts'

/**
 * A body made from a VolatileBody's chunks (checked, counted, held until vouched for), with the same
 * surface. The source starts to flow only once someone listens for this body's 'data' (as a Readable
 * would), so nothing is emitted before the consumer is there. Like a Readable, it emits nothing while
 * paused: one source chunk may complete several outputs, and a consumer that paused after the first
 * (a write that went to the thread pool) must not get the next before it resumes; those are kept as
 * copies until then.
 */
export abstract class DerivedBody extends BodyEvents {
  protected readonly raw: VolatileBody
  private attached = false
  private paused = false
  private queued: Buffer[] = []
  private sourceDone = false

  constructor (raw: VolatileBody) {
    super()
    this.raw = raw
    raw.on('error', (err: Error) => { this.fail(err) })
  }

  override on (event: string | symbol, listener: Parameters<EventEmitter['on']>[1]): this {
    super.on(event, listener)
    if (event === 'data' && !this.attached) {
      this.attached = true
      this.raw.on('data', (chunk: Buffer) => { if (!this.destroyed) this.take(chunk) })
      this.raw.once('end', () => {
        this.sourceDone = true
        if (this.queued.length === 0) this.sourceEnded()
      })
    }
    return this
  }

  pause (): this {
    this.paused = true
    this.raw.pause()
    return this
  }

  resume (): this {
    this.paused = false
    while (this.queued.length > 0 && !this.paused && !this.destroyed) this.emit('data', this.queued.shift() as Buffer)
    if (this.paused || this.destroyed) return this
    if (this.sourceDone) this.sourceEnded()
    else this.raw.resume()
    return this
  }

  /** A chunk of the source (valid during this call only). */
  protected abstract take (chunk: Buffer): void

  /** Passes `chunk` on (valid during this call only), or keeps a copy while the consumer is paused. */
  protected pass (chunk: Buffer): void {
    if (this.paused || this.queued.length > 0) this.queued.push(Buffer.from(chunk))
    else this.emit('data', chunk)
  }

  /** Buffers to give back when the body is over, whichever way. */
  protected release (): void {}

  /** The source delivered all it announced (and the consumer has every byte passed on). */
  protected sourceEnded (): void {
    if (this.destroyed) return
    this.release()
    this.ended()
  }

  protected fail (err: Error): void {
    if (this.destroyed) return
    this.queued = []
    this.release()
    this.settle(err)
  }

  protected abandon (): void {
    this.queued = []
    this.raw.destroy()
    this.release()
  }
}
