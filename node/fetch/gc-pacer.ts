import { pipeline, Transform } from 'node:stream'
import type { Readable } from 'node:stream'
import { getHeapStatistics } from 'node:v8'

/** What `globalThis.gc` is when Node runs with --expose-gc. */
export type GcFunction = (options: { type: 'minor' | 'major', execution?: 'sync' | 'async' }) => unknown

/**
 * Frees dead I/O buffers promptly. Every socket read and every file read allocates a fresh buffer
 * outside the JS heap, and V8 frees it only when it collects. Moving bytes allocates few JS objects,
 * so V8 seldom scavenges; dead buffers pile up (resident memory grows by tens of MiB) until
 * external-memory pressure forces a full mark-compact of the whole heap: tens of ms of CPU each,
 * about one per 30 MiB moved. A young-generation collection every few MiB moved frees them for
 * about a millisecond. Needs `gc` (the launcher starts Node with --expose-gc); without it this does
 * nothing.
 */
export class GcPacer {
  private readonly gc: GcFunction | null
  private readonly every: number
  private since = 0
  private timer: NodeJS.Timeout | null = null
  private baseline = 0

  constructor (init: { gc?: GcFunction | null, everyBytes?: number } = {}) {
    this.gc = init.gc ?? null
    this.every = init.everyBytes ?? 4 << 20
  }

  get enabled (): boolean {
    return this.gc !== null
  }

  /** Counts bytes that went through freshly allocated buffers. */
  moved (bytes: number): void {
    if (this.gc === null) return
    this.since += bytes
    if (this.since < this.every) return
    this.collect()
  }

  /**
   * Also watches buffers allocated elsewhere (the proxy strategy, metadata bodies): every
   * `intervalMs` it collects when external memory grew by the budget since the last collection.
   */
  start (intervalMs = 100): void {
    if (this.gc === null || this.timer !== null) return
    this.baseline = getHeapStatistics().external_memory
    this.timer = setInterval(() => {
      const now = getHeapStatistics().external_memory
      // Growth counts from the lowest point since the last collection (V8 may free buffers meanwhile).
      if (now < this.baseline) this.baseline = now
      else if (now - this.baseline >= this.every) this.collect()
    }, intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  private collect (): void {
    this.since = 0
    this.gc?.({ type: 'minor' })
    this.baseline = getHeapStatistics().external_memory
  }
}

/** `globalThis.gc` when exposed (--expose-gc), else null. */
export function exposedGc (): GcFunction | null {
  const gc = (globalThis as { gc?: unknown }).gc
  return typeof gc === 'function' ? gc as GcFunction : null
}

/**
 * `body` with every chunk counted by the pacer, for byte paths outside the fetch engine (the proxy
 * strategy, the peer data port). Errors and early ends travel both ways (pipeline).
 */
export function paced (body: Readable, pacer: GcPacer | undefined): Readable {
  if (pacer === undefined || !pacer.enabled) return body
  const counted = new Transform({
    transform (chunk: Buffer, _enc, cb) {
      pacer.moved(chunk.length)
      cb(null, chunk)
    }
  })
  pipeline(body, counted, () => {})
  return counted
}
