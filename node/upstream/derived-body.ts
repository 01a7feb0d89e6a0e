import type { EventEmitter } from 'node:events'
import { BodyEvents } from './body-events.ts'
import type { VolatileBody } from './volatile-body.ts'

/**
 * A body made from a VolatileBody's chunks (checked, counted, held until vouched for), with the same
 * surface. The source starts to flow only once someone listens for this body's 'data' (as a Readable
 * would), so nothing is emitted before the consumer is there; pause and resume reach the source.
 */
export abstract class DerivedBody extends BodyEvents {
  protected readonly raw: VolatileBody
  private attached = false

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
      this.raw.once('end', () => { this.sourceEnded() })
    }
    return this
  }

  pause (): this {
    this.raw.pause()
    return this
  }

  resume (): this {
    this.raw.resume()
    return this
  }

  /** A chunk of the source (valid during this call only). */
  protected abstract take (chunk: Buffer): void

  /** Buffers to give back when the body is over, whichever way. */
  protected release (): void {}

  /** The source delivered all it announced. */
  protected sourceEnded (): void {
    if (this.destroyed) return
    this.release()
    this.ended()
  }

  protected fail (err: Error): void {
    if (this.destroyed) return
    this.release()
    this.settle(err)
  }

  protected abandon (): void {
    this.raw.destroy()
    this.release()
  }
}
