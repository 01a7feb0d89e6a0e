import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { fstatSync, readSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import type { ByteRanges } from './byte-ranges.ts'

/** Read-back size (one buffer, reused). */
const READ_BACK = 128 << 10
/** Bytes hashed from disk before yielding to the event loop. */
const SLICE = 8 << 20

/**
 * A hash by algorithm name for a blob of `size` bytes; `git-sha1` is git's blob id, sha1 over
 * `blob <size>\0` and the bytes (what the HuggingFace Hub publishes as the ETag of files kept in git).
 */
export function createDigest (algorithm: string, size: number): Hash {
  if (algorithm !== 'git-sha1') return createHash(algorithm)
  return createHash('sha1').update(`blob ${size}\0`)
}

/** Something else that takes the blob's bytes in order, as they are hashed (a list of piece hashes). */
export interface InOrder {
  update: (bytes: Buffer) => void
}

/**
 * Hashes a file in byte order while its pieces arrive in any order. Bytes written exactly at the
 * hashed frontier are hashed from memory; anything that arrived ahead of it is read back from the
 * temp file (page cache) once the gap before it is filled. Never buffers more than 1 MiB.
 */
export class OrderedHasher {
  hashedTo = 0
  private readonly hashes: Array<{ update: (bytes: Buffer) => unknown }>
  private readonly digesters: Hash[]
  private readonly algorithms: string[]
  private readonly fh: FileHandle
  private readonly written: ByteRanges
  private readonly onAdvance: () => void
  private readonly onError: (err: unknown) => void
  private pumping = false
  private buf: Buffer | null = null

  /** `also` sees every byte in order too. */
  constructor (fh: FileHandle, written: ByteRanges, algorithms: string[], hooks: { onAdvance: () => void, onError: (err: unknown) => void, also?: InOrder }) {
    this.fh = fh
    this.written = written
    this.algorithms = algorithms
    // The temp file already has its final size (preallocated, or the partial being resumed).
    const size = fstatSync(fh.fd).size
    this.digesters = algorithms.map(a => createDigest(a, size))
    this.hashes = hooks.also === undefined ? this.digesters : [...this.digesters, hooks.also]
    this.onAdvance = hooks.onAdvance
    this.onError = hooks.onError
  }

  /** Called after `chunk` was written at `start` (and added to `written`). */
  wrote (start: number, chunk: Buffer): void {
    const end = start + chunk.length
    if (!this.pumping && start <= this.hashedTo && end > this.hashedTo) {
      const part = start === this.hashedTo ? chunk : chunk.subarray(this.hashedTo - start)
      for (const h of this.hashes) h.update(part)
      this.hashedTo = end
      if (this.written.contiguousEnd(end) > end) this.pump()
      else this.onAdvance()
      return
    }
    if (this.written.contiguousEnd(this.hashedTo) > this.hashedTo) this.pump()
  }

  /** Hashes whatever contiguous bytes are on disk past the frontier. */
  pump (): void {
    if (this.pumping) return
    this.pumping = true
    this.run().then(() => {
      this.pumping = false
      this.onAdvance()
      // A write at the old frontier may have been deferred while the pump ran.
      if (this.written.contiguousEnd(this.hashedTo) > this.hashedTo) this.pump()
    }, (err: unknown) => {
      this.pumping = false
      this.onError(err)
    })
  }

  digests (): Record<string, string> {
    const out: Record<string, string> = {}
    this.algorithms.forEach((a, i) => { out[a] = (this.digesters[i] as Hash).digest('hex') })
    return out
  }

  /**
   * Reads back with synchronous preads: the bytes were just written and sit in the page cache, where
   * a thread-pool read would cost more in handoffs than the copy itself. Yields to the event loop
   * every few MiB so a long run (a gap that just filled) does not hold up the connections.
   */
  private async run (): Promise<void> {
    let slice = 0
    for (;;) {
      const end = this.written.contiguousEnd(this.hashedTo)
      if (end <= this.hashedTo) return
      if (slice >= SLICE) {
        slice = 0
        await new Promise(resolve => setImmediate(resolve))
        continue
      }
      const len = Math.min(READ_BACK, end - this.hashedTo)
      const buf = this.buf ??= Buffer.allocUnsafe(READ_BACK)
      const bytesRead = readSync(this.fh.fd, buf, 0, len, this.hashedTo)
      if (bytesRead <= 0) throw new Error('short read while hashing')
      const view = buf.subarray(0, bytesRead)
      for (const h of this.hashes) h.update(view)
      this.hashedTo += bytesRead
      slice += bytesRead
      this.onAdvance()
    }
  }
}
