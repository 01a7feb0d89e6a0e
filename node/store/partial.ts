/**
 * Piece bitmap of a partial download: which fixed-size pieces are fully on disk in the temp file.
 * Persisted in the index so a download resumes after a restart or a crash.
 */
export class PieceBitmap {
  readonly count: number
  private readonly bits: Uint8Array
  private setCount = 0

  constructor (count: number, bits?: Uint8Array) {
    this.count = count
    this.bits = new Uint8Array(Math.ceil(count / 8))
    if (bits !== undefined) {
      this.bits.set(bits.subarray(0, this.bits.length))
      for (let i = 0; i < count; i++) if (this.has(i)) this.setCount++
    }
  }

  has (i: number): boolean {
    return ((this.bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0
  }

  /** Marks piece i; returns false when it was already set. */
  set (i: number): boolean {
    if (i < 0 || i >= this.count || this.has(i)) return false
    this.bits[i >> 3] = (this.bits[i >> 3] ?? 0) | (1 << (i & 7))
    this.setCount++
    return true
  }

  get done (): number {
    return this.setCount
  }

  get complete (): boolean {
    return this.setCount === this.count
  }

  toBase64 (): string {
    return Buffer.from(this.bits).toString('base64')
  }

  static fromBase64 (count: number, b64: string): PieceBitmap {
    return new PieceBitmap(count, new Uint8Array(Buffer.from(b64, 'base64')))
  }
}
