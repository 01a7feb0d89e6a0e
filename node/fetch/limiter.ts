import { AbortedError } from '../errors.ts'

/**
 * A cap on things running at once, with a queue (urgent waiters first); never refuses. The fetcher has
 * two, both of server.max_concurrent_downloads: downloads (each holds one slot for its first
 * connection) and the further connections of the downloads under way.
 */
export class Limiter {
  readonly max: number
  private running = 0
  private readonly queue: Array<{ urgent: boolean, grant: () => void }> = []

  constructor (max: number) {
    this.max = Math.max(1, max)
  }

  get active (): number {
    return this.running
  }

  get waiting (): number {
    return this.queue.length
  }

  /** Resolves with a release function once a slot is free. */
  async acquire (options: { signal?: AbortSignal, urgent?: boolean } = {}): Promise<() => void> {
    const signal = options.signal
    if (signal?.aborted === true) throw new AbortedError(undefined, { cause: signal.reason })
    if (this.running < this.max) {
      this.running++
      return this.releaser()
    }
    return await new Promise((resolve, reject) => {
      const waiter = {
        urgent: options.urgent === true,
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          this.running++
          resolve(this.releaser())
        }
      }
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter)
        if (i >= 0) this.queue.splice(i, 1)
        reject(new AbortedError(undefined, { cause: signal?.reason }))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      if (waiter.urgent) {
        const i = this.queue.findIndex(w => !w.urgent)
        this.queue.splice(i < 0 ? this.queue.length : i, 0, waiter)
      } else {
        this.queue.push(waiter)
      }
    })
  }

  private releaser (): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      this.running--
      const next = this.queue.shift()
      if (next !== undefined) next.grant()
    }
  }
}
