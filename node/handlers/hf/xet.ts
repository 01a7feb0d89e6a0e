/**
 * Keeps clients off Xet. huggingface_hub with hf_xet (and @huggingface/hub) download from Xet's CAS
 * hosts directly when a response names a Xet file: the `X-Xet-*` headers, the `xet-auth` /
 * `xet-reconstruction-info` relations of `Link`, and `xetHash` in tree and paths-info JSON. Without
 * them both clients fall back to plain HTTP through the mirror. Pure functions.
 */

/** Header names (lower-case) that announce Xet storage. */
export function isXetHeader (name: string): boolean {
  return name.toLowerCase().startsWith('x-xet-')
}

/** Splits a Link header value into its `<uri>; params` members (commas inside `<...>` are kept). */
export function splitLinkHeader (value: string): string[] {
  const out: string[] = []
  let depth = 0
  let quoted = false
  let start = 0
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (c === '"' && depth === 0) quoted = !quoted
    else if (!quoted && c === '<') depth++
    else if (!quoted && c === '>') depth = Math.max(0, depth - 1)
    else if (!quoted && depth === 0 && c === ',') {
      out.push(value.slice(start, i))
      start = i + 1
    }
  }
  out.push(value.slice(start))
  return out.map(s => s.trim()).filter(s => s !== '')
}

function relsOf (member: string): string[] {
  const m = /;\s*rel\s*=\s*(?:"([^"]*)"|([^;\s,]+))/i.exec(member)
  if (m === null) return []
  return (m[1] ?? m[2] ?? '').toLowerCase().split(/\s+/).filter(r => r !== '')
}

/** The Link value without Xet relations; null when nothing is left. */
export function stripXetLinks (value: string): string | null {
  const kept = splitLinkHeader(value).filter(member => !relsOf(member).some(r => r.startsWith('xet-')))
  return kept.length === 0 ? null : kept.join(', ')
}

/** Response headers (lower-case record) without the Xet announcement. */
export function stripXetHeaders (headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (isXetHeader(name)) continue
    if (name.toLowerCase() === 'link') {
      const kept = stripXetLinks(value)
      if (kept !== null) out[name] = kept
      continue
    }
    out[name] = value
  }
  return out
}

const XET_KEYS = new Set(['xetHash', 'xet_hash'])

/** Removes Xet file hashes from parsed API JSON, in place; returns how many were removed. */
export function stripXetJson (value: unknown): number {
  let removed = 0
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const item of v) walk(item)
      return
    }
    if (v === null || typeof v !== 'object') return
    const obj = v as Record<string, unknown>
    for (const key of Object.keys(obj)) {
      if (XET_KEYS.has(key)) {
        delete obj[key]
        removed++
      } else {
        walk(obj[key])
      }
    }
  }
  walk(value)
  return removed
}

/** The `Accept` a client sent, minus the Xet file-info type (@huggingface/hub asks for it first). */
export function withoutXetAccept (accept: string | undefined): string | undefined {
  if (accept === undefined) return undefined
  const kept = accept.split(',').map(s => s.trim()).filter(s => s !== '' && !s.toLowerCase().startsWith('application/vnd.xet-'))
  return kept.length === 0 ? '*/*' : kept.join(', ')
}
