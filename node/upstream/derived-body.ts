import type { EventEmitter } from 'node:events'
import { VolatileBody } from './volatile-body.ts'

/**
 * A body made from another VolatileBody's chunks (checked, held until vouched for). It is a VolatileBody
 * whose connection is that source: what it passes on is delivered like socket bytes, so nothing is
 * emitted while its consumer is paused (one source chunk may complete several outputs) and those are
 * kept as copies until it resumes. The source starts to flow only once someone listens for 'data'.
 */
export abstract class DerivedBody extends VolatileBody {
  protected readonly raw: VolatileBody
  private attached = false

  constructor (raw: VolatileBody) {
    super({ resume: () => { raw.resume() }, abandon: () => { raw.destroy() } })
    this.raw = raw
    raw.on('error', (err: Error) => { this.fail(err) })
  }

  override on (event: string | symbol, listener: Parameters<EventEmitter['on']>[1]): this {
    super.on(event, listener)
    if (event === 'data' && !this.attached) {
      this.attached = true
      this.raw.on('data', (chunk: Buffer) => { if (!this.destroyed) this.take(chunk) })
      this.raw.once('end', () => { this.finish() })
    }
    return this
  }

  /** A chunk of the source (valid during this call only). */
  protected abstract take (chunk: Buffer): void

  /** Passes `chunk` on (valid during this call only); the source waits while the consumer does. */
  protected pass (chunk: Buffer): void {
    if (!this.deliver(chunk)) this.raw.pause()
  }

  /** Buffers to give back when the body is over, whichever way. */
  protected release (): void {}

  protected override settle (err?: Error): void {
    this.release()
    super.settle(err)
  }

  protected override ended (): void {
    this.release()
    super.ended()
  }
}
