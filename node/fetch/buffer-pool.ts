/**
 * Read buffers lent to the HTTP layer and given back once the socket wrote them. Serving a blob reads
 * it into buffers at the speed of the client; a fresh buffer per read is freed only when V8 collects,
 * and buffers still queued for a slow client at two young collections move to the old generation,
 * where tens of MiB pile up before a full collection. Recycled buffers avoid both. Holds at most
 * `maxIdleBytes` between uses; beyond that, given-back buffers are left to the collector.
 */
export class BufferPool {
  private readonly idle = new Map<number, ArrayBuffer[]>()
  /** Buffers this pool made: only those come back (a chunk may be another source's buffer). */
  private readonly mine = new WeakSet<ArrayBuffer>()
  private readonly maxIdleBytes: number
  private idleBytes = 0
  /** Buffers allocated so far (the rest of what was lent came back and went out again). */
  made = 0

  constructor (init: { maxIdleBytes?: number } = {}) {
    this.maxIdleBytes = init.maxIdleBytes ?? 8 << 20
  }

  /** A buffer of exactly `size` bytes (contents undefined). */
  take (size: number): Buffer {
    const ab = this.idle.get(size)?.pop()
    if (ab !== undefined) {
      this.idleBytes -= size
      return Buffer.from(ab, 0, size)
    }
    const buf = Buffer.allocUnsafeSlow(size)
    this.made++
    this.mine.add(buf.buffer as ArrayBuffer)
    return buf
  }

  /** Gives back a buffer from `take` (or any view of one) once nothing reads it any more. */
  give (buf: Buffer): void {
    const ab = buf.buffer as ArrayBuffer
    if (!this.mine.has(ab) || this.idleBytes + ab.byteLength > this.maxIdleBytes) return
    let list = this.idle.get(ab.byteLength)
    if (list === undefined) this.idle.set(ab.byteLength, list = [])
    // A buffer given back twice would be lent twice at once.
    if (list.includes(ab)) return
    list.push(ab)
    this.idleBytes += ab.byteLength
  }
}
