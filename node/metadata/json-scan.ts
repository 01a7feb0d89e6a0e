/**
 * A streaming JSON scanner that passes every byte through except the scalar values a visitor chooses,
 * which it may replace. It keeps where it is (the keys and indexes above the current value), never the
 * document, so a packument or index of any size is rewritten in the memory of its largest chosen value.
 * It does not validate: malformed input passes through, with whatever the visitor chose in it.
 */

/** Keys (objects) and indexes (arrays) from the root to a value. */
export type JsonPath = ReadonlyArray<string | number>

export interface JsonVisitor {
  /** Whether the scalar at `path` (its own key or index last) is passed to `value`. */
  readonly wants: (path: JsonPath) => boolean
  /**
   * A chosen scalar's JSON text (a string with its quotes and escapes, a number, `true`…). Returns the
   * JSON text to put in its place, or undefined to keep it.
   */
  readonly value: (path: JsonPath, raw: string) => string | undefined
  /** An object or array at `path` ended. */
  readonly close?: (path: JsonPath) => void
}

/** Keys and chosen values longer than this are passed through unread (a URL or digest never is). */
const MAX_HELD = 1 << 20
/** Containers nested deeper than this are passed through unread (no document has a reason to). */
const MAX_DEPTH = 1000
/** A key that was too long to read: no path through it is chosen. */
const UNREAD_KEY = '\u0000unread'

const QUOTE = 0x22
const BACKSLASH = 0x5c

// What the byte at hand belongs to.
const OUTSIDE = 0
const IN_STRING = 1
const IN_SCALAR = 2

function isScalarByte (c: number): boolean {
  // Digits, letters (true/false/null, exponents), '.', '+', '-'.
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x2e || c === 0x2b || c === 0x2d
}

export class JsonScanner {
  private readonly visitor: JsonVisitor
  /** One slot per open container: its current key (objects) or index (arrays). */
  private readonly path: Array<string | number> = []
  private readonly isArray: boolean[] = []
  private expectKey = false
  private state = OUTSIDE
  private escaped = false
  private stringIsKey = false
  /** The value at hand is chosen: its bytes are held, not passed on, until it ends. */
  private holding = false
  private held: Buffer[] = []
  private heldBytes = 0
  /** Out of the current chunk, bytes before this index are passed on or held. */
  private doneTo = 0
  private out: Buffer[] = []
  /** Containers open beyond MAX_DEPTH: nothing inside them is read. */
  private tooDeep = 0

  constructor (visitor: JsonVisitor) {
    this.visitor = visitor
  }

  /** Scans one chunk; returns the bytes to pass on so far (chunk slices and replacements). */
  push (chunk: Buffer): Buffer[] {
    this.doneTo = 0
    let nextBackslash = -1
    const n = chunk.length
    let i = 0
    while (i < n) {
      if (this.state === IN_STRING) {
        if (this.escaped) { this.escaped = false; i++; continue }
        const q = chunk.indexOf(QUOTE, i)
        const end = q === -1 ? n : q
        if (nextBackslash < i && nextBackslash !== n) {
          nextBackslash = chunk.indexOf(BACKSLASH, i)
          if (nextBackslash === -1) nextBackslash = n
        }
        if (nextBackslash < end) { i = nextBackslash + 1; this.escaped = true; continue }
        if (q === -1) break
        i = q + 1
        this.endString(chunk, i)
        continue
      }
      const c = chunk[i] as number
      if (this.state === IN_SCALAR) {
        if (isScalarByte(c)) { i++; continue }
        this.endScalar(chunk, i)
        continue
      }
      i++
      switch (c) {
        case 0x20: case 0x0a: case 0x0d: case 0x09: break
        case 0x7b: this.open(false); break // {
        case 0x5b: this.open(true); break // [
        case 0x7d: case 0x5d: this.close(); break // } ]
        case 0x2c: this.next(); break // ,
        case 0x3a: this.expectKey = false; break // :
        case QUOTE:
          this.state = IN_STRING
          this.stringIsKey = this.expectKey && this.isArray.at(-1) === false
          this.startValue(chunk, i - 1, this.stringIsKey)
          break
        default:
          this.state = IN_SCALAR
          this.startValue(chunk, i - 1, false)
      }
    }
    this.flushChunk(chunk)
    return this.takeOut()
  }

  /** The end of input: a scalar that ran to the last byte ends here. */
  end (): Buffer[] {
    if (this.state === IN_SCALAR) this.endScalar(Buffer.alloc(0), 0)
    else if (this.holding) this.release(null)
    return this.takeOut()
  }

  private takeOut (): Buffer[] {
    const out = this.out
    this.out = []
    return out
  }

  private open (array: boolean): void {
    if (this.tooDeep > 0 || this.path.length >= MAX_DEPTH) {
      this.tooDeep++
      return
    }
    this.path.push(array ? 0 : '')
    this.isArray.push(array)
    this.expectKey = !array
  }

  private close (): void {
    if (this.tooDeep > 0) {
      this.tooDeep--
      this.expectKey = false
      return
    }
    if (this.path.length === 0) return
    this.path.pop()
    this.isArray.pop()
    this.expectKey = false
    this.visitor.close?.(this.path)
  }

  private next (): void {
    if (this.tooDeep > 0) return
    const top = this.path.length - 1
    if (top < 0) return
    if (this.isArray[top] === true) this.path[top] = (this.path[top] as number) + 1
    else this.expectKey = true
  }

  private startValue (chunk: Buffer, at: number, key: boolean): void {
    if (this.tooDeep > 0 || (!key && !this.visitor.wants(this.path))) return
    this.out.push(chunk.subarray(this.doneTo, at))
    this.doneTo = at
    this.holding = true
  }

  private endString (chunk: Buffer, end: number): void {
    this.state = OUTSIDE
    if (this.stringIsKey) this.expectKey = false
    if (!this.holding) return
    const raw = this.take(chunk, end)
    if (this.stringIsKey) {
      const top = this.path.length - 1
      if (top >= 0) this.path[top] = raw === null ? UNREAD_KEY : keyOf(raw)
      if (raw !== null) this.out.push(raw)
      return
    }
    this.release(raw)
  }

  private endScalar (chunk: Buffer, end: number): void {
    this.state = OUTSIDE
    if (this.holding) this.release(this.take(chunk, end))
  }

  /** The held value's bytes up to `end` of `chunk` (null if it grew too long and was passed on). */
  private take (chunk: Buffer, end: number): Buffer | null {
    this.holding = false
    const last = chunk.subarray(this.doneTo, end)
    this.doneTo = end
    const raw = this.held.length === 0 ? last : Buffer.concat(this.held.concat(last))
    const tooLong = this.heldBytes + last.length > MAX_HELD
    this.held = []
    this.heldBytes = 0
    if (!tooLong) return raw
    this.out.push(raw)
    return null
  }

  private release (raw: Buffer | null): void {
    this.holding = false
    if (raw === null) {
      this.passHeld()
      return
    }
    const replacement = this.visitor.value(this.path, raw.toString('utf8'))
    this.out.push(replacement === undefined ? raw : Buffer.from(replacement, 'utf8'))
  }

  private passHeld (): void {
    if (this.held.length > 0) this.out.push(Buffer.concat(this.held))
    this.held = []
    this.heldBytes = 0
  }

  /** The chunk's tail: passed on, or held while a chosen value is still open (too long: passed on unread). */
  private flushChunk (chunk: Buffer): void {
    const tail = chunk.subarray(this.doneTo)
    this.doneTo = chunk.length
    if (!this.holding) {
      if (tail.length > 0) this.out.push(tail)
      return
    }
    if (this.heldBytes + tail.length > MAX_HELD) {
      // Too long to be a URL or digest: given up on, and passed on as it is.
      this.held.push(tail)
      this.passHeld()
      this.holding = false
      if (this.stringIsKey) {
        const top = this.path.length - 1
        if (top >= 0) this.path[top] = UNREAD_KEY
      }
      return
    }
    this.held.push(Buffer.from(tail))
    this.heldBytes += tail.length
  }
}

function keyOf (raw: Buffer): string {
  if (!raw.includes(BACKSLASH)) return raw.toString('utf8', 1, raw.length - 1)
  try {
    const key: unknown = JSON.parse(raw.toString('utf8'))
    return typeof key === 'string' ? key : UNREAD_KEY
  } catch {
    return UNREAD_KEY
  }
}

/** A chosen value's JSON text as the string it encodes; null for other values. */
export function jsonString (raw: string): string | null {
  if (raw[0] !== '"') return null
  try {
    const value: unknown = JSON.parse(raw)
    return typeof value === 'string' ? value : null
  } catch {
    return null
  }
}

/** Runs `source` through a scanner with `visitor`. */
export async function * scanJson (source: AsyncIterable<Buffer>, visitor: JsonVisitor): AsyncGenerator<Buffer> {
  const scanner = new JsonScanner(visitor)
  for await (const chunk of source) {
    const out = scanner.push(chunk)
    if (out.length > 0) yield out.length === 1 ? out[0] as Buffer : Buffer.concat(out)
  }
  const rest = scanner.end()
  if (rest.length > 0) yield Buffer.concat(rest)
}
