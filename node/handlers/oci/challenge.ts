/**
 * `WWW-Authenticate` challenges (RFC 9110 §11.6.1), parsed and written (pure). Registries send one or
 * several per header line (Quay has been seen sending `Basic realm="quay.io", Bearer realm=...`).
 */

export interface Challenge {
  /** Lower-case scheme (`bearer`, `basic`). */
  readonly scheme: string
  /** Lower-case parameter names. */
  readonly params: Readonly<Record<string, string>>
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]/

class Lexer {
  i = 0
  readonly s: string
  constructor (s: string) { this.s = s }
  get done (): boolean { return this.i >= this.s.length }
  skip (chars: string): void {
    while (!this.done && chars.includes(this.s[this.i] as string)) this.i++
  }

  token (): string {
    const start = this.i
    while (!this.done && TOKEN.test(this.s[this.i] as string)) this.i++
    return this.s.slice(start, this.i)
  }

  quoted (): string {
    let out = ''
    this.i++
    while (!this.done) {
      const c = this.s[this.i++] as string
      if (c === '"') return out
      out += c === '\\' && !this.done ? (this.s[this.i++] as string) : c
    }
    return out
  }
}

/** Every challenge in the given header values, in order. Malformed parts are skipped. */
export function parseChallenges (values: readonly string[]): Challenge[] {
  const out: Challenge[] = []
  for (const value of values) {
    const lx = new Lexer(value)
    let current: { scheme: string, params: Record<string, string> } | null = null
    while (!lx.done) {
      lx.skip(' \t,')
      const start = lx.i
      const word = lx.token()
      if (word === '') { lx.i++; continue }
      lx.skip(' \t')
      if (lx.s[lx.i] === '=' && current !== null) {
        lx.i++
        lx.skip(' \t')
        const v = lx.s[lx.i] === '"' ? lx.quoted() : lx.token()
        current.params[word.toLowerCase()] = v
        continue
      }
      if (lx.s[lx.i] === '=') { lx.i = start + word.length + 1; continue }
      current = { scheme: word.toLowerCase(), params: {} }
      out.push(current)
    }
  }
  return out
}

function quote (v: string): string {
  return `"${v.replace(/[\\"]/g, c => '\\' + c)}"`
}

/** `Bearer realm="...",service="...",scope="..."` with the parameters in the given order. */
export function bearerChallenge (params: Readonly<Record<string, string | undefined>>): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(params)) if (v !== undefined) parts.push(`${k}=${quote(v)}`)
  return `Bearer ${parts.join(',')}`
}
