/** An HTTP/1.x response head: status, lower-cased headers (repeats joined with ", "), and its framing. */
export interface ResponseHead {
  readonly status: number
  readonly headers: Record<string, string>
  /** The body's length; null when the head does not frame the body by Content-Length alone. */
  readonly contentLength: number | null
  /** Whether the connection may carry another request after this response. */
  readonly keepAlive: boolean
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/
const DIGITS = /^\d{1,15}$/

/**
 * Parses the text of a response head (everything before the blank line). Returns null for anything
 * that is not a well-formed HTTP/1.x head: the caller hands such a response to a full HTTP client.
 */
export function parseResponseHead (text: string): ResponseHead | null {
  const lines = text.split('\r\n')
  const status = STATUS_LINE.exec(lines[0] ?? '')
  if (status === null) return null
  const headers: Record<string, string> = {}
  for (let i = 1; i < lines.length; i++) {
    const m = HEADER_LINE.exec(lines[i] as string)
    // Obsolete line folding, bare CRs, spaces before the colon: not worth reading here.
    if (m === null) return null
    const name = (m[1] as string).toLowerCase()
    const value = m[2] as string
    const prev = headers[name]
    headers[name] = prev === undefined ? value : `${prev}, ${value}`
  }
  const length = headers['content-length']
  const contentLength = headers['transfer-encoding'] === undefined && length !== undefined && DIGITS.test(length) ? Number(length) : null
  const connection = (headers.connection ?? '').toLowerCase()
  const keepAlive = status[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive')
  return { status: Number(status[2]), headers, contentLength, keepAlive }
}
