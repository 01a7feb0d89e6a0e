/**
 * A set of half-open byte intervals [start, end), kept sorted and merged. Tracks which bytes of a
 * download are on disk; the number of intervals stays around the number of active connections.
 */
export class ByteRanges {
  private readonly starts: number[] = []
  private readonly ends: number[] = []

  get intervals (): number {
    return this.starts.length
  }

  add (start: number, end: number): void {
    if (end <= start) return
    // First interval whose end reaches start (touching intervals merge).
    const i = this.lowerEnd(start)
    let s = start
    let e = end
    let j = i
    while (j < this.starts.length && (this.starts[j] as number) <= e) {
      s = Math.min(s, this.starts[j] as number)
      e = Math.max(e, this.ends[j] as number)
      j++
    }
    this.starts.splice(i, j - i, s)
    this.ends.splice(i, j - i, e)
  }

  /** Drops [start, end) from the set (bytes that must be fetched again). */
  remove (start: number, end: number): void {
    if (end <= start) return
    const starts: number[] = []
    const ends: number[] = []
    for (let i = 0; i < this.starts.length; i++) {
      const s = this.starts[i] as number
      const e = this.ends[i] as number
      if (e <= start || s >= end) { starts.push(s); ends.push(e); continue }
      if (s < start) { starts.push(s); ends.push(start) }
      if (e > end) { starts.push(end); ends.push(e) }
    }
    this.starts.splice(0, this.starts.length, ...starts)
    this.ends.splice(0, this.ends.length, ...ends)
  }

  clear (): void {
    this.starts.length = 0
    this.ends.length = 0
  }

  /** The intervals, in order (at most `max`, the first ones). */
  list (max = Number.POSITIVE_INFINITY): Array<[number, number]> {
    const n = Math.min(max, this.starts.length)
    const out: Array<[number, number]> = []
    for (let i = 0; i < n; i++) out.push([this.starts[i] as number, this.ends[i] as number])
    return out
  }

  /** True when every byte of [start, end) is present. */
  covers (start: number, end: number): boolean {
    if (end <= start) return true
    const i = this.lowerEnd(start + 1)
    return i < this.starts.length && (this.starts[i] as number) <= start && (this.ends[i] as number) >= end
  }

  /** End of the run of present bytes that starts at `from` (== from when byte `from` is missing). */
  contiguousEnd (from: number): number {
    const i = this.lowerEnd(from + 1)
    if (i < this.starts.length && (this.starts[i] as number) <= from) return this.ends[i] as number
    return from
  }

  /** Missing sub-intervals of [start, end). */
  gaps (start: number, end: number): Array<[number, number]> {
    const out: Array<[number, number]> = []
    let pos = start
    for (let i = this.lowerEnd(start + 1); i < this.starts.length && pos < end; i++) {
      const s = this.starts[i] as number
      const e = this.ends[i] as number
      if (s > pos) out.push([pos, Math.min(s, end)])
      pos = Math.max(pos, e)
    }
    if (pos < end) out.push([pos, end])
    return out
  }

  /** First present byte at or after `from` (Infinity when none). */
  firstAtOrAfter (from: number): number {
    const i = this.lowerEnd(from + 1)
    if (i >= this.starts.length) return Number.POSITIVE_INFINITY
    return Math.max(from, this.starts[i] as number)
  }

  total (): number {
    let n = 0
    for (let i = 0; i < this.starts.length; i++) n += (this.ends[i] as number) - (this.starts[i] as number)
    return n
  }

  /** Index of the first interval with end >= x. */
  private lowerEnd (x: number): number {
    let lo = 0
    let hi = this.ends.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((this.ends[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
