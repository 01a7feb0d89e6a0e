import type { RawHeaders } from '../upstream/request.ts'

/** Per-connection headers (RFC 9110 §7.6.1) plus `host` and `expect`, which describe this hop only. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'expect', 'http2-settings'
])

function connectionListed (raw: RawHeaders): Set<string> {
  const listed = new Set<string>()
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'connection') continue
    for (const token of (raw[i + 1] as string).split(',')) {
      const t = token.trim().toLowerCase()
      if (t !== '') listed.add(t)
    }
  }
  return listed
}

/**
 * Drops hop-by-hop headers (and any the `Connection` header names) from a raw header list, keeping every
 * other line, repeated ones included, in its original order. `drop` removes more names (lower-case).
 */
export function endToEndHeaders (raw: RawHeaders, drop: readonly string[] = []): string[] {
  const listed = connectionListed(raw)
  const extra = new Set(drop)
  const out: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || listed.has(lower) || extra.has(lower)) continue
    out.push(name, raw[i + 1] as string)
  }
  return out
}

/** Groups a raw list by lower-case name for `reply.headers()`: repeated lines become arrays (sent as separate lines). */
export function groupHeaders (raw: RawHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    const value = raw[i + 1] as string
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[name] = [prev, value]
  }
  return out
}
