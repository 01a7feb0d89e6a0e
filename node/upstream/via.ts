import { randomBytes } from 'node:crypto'
import type { Dispatcher } from 'undici'

/**
 * This node's entry in `Via` (RFC 9110 §7.6.3), different in every node process. A request that arrives
 * carrying it was sent by this node: an upstream that leads back to it (its own address under another
 * name, or another mirror whose rule points here). Refused, it ends the loop at once; sent on, every hop
 * would send it on again, without end.
 */
export const OWN_VIA = `1.1 aimirror-${randomBytes(6).toString('hex')}`

/** Whether a request's `Via` shows it was sent by this node. */
export function cameBack (via: string | string[] | undefined): boolean {
  if (via === undefined) return false
  return (Array.isArray(via) ? via : [via]).some(v => v.split(',').some(entry => entry.trim() === OWN_VIA))
}

type Headers = Dispatcher.DispatchOptions['headers']

/** `headers` (any form undici takes) with this node's entry added to `Via`. */
export function withOwnVia (headers: Headers): Headers {
  if (headers === undefined || headers === null) return { via: OWN_VIA }
  if (Array.isArray(headers)) {
    const flat = [...headers] as string[]
    for (let i = 0; i + 1 < flat.length; i += 2) {
      if (flat[i]?.toLowerCase() === 'via') { flat[i + 1] = `${flat[i + 1] ?? ''}, ${OWN_VIA}`; return flat }
    }
    return [...flat, 'via', OWN_VIA]
  }
  const entries: Array<[string, string | number | string[] | undefined]> = Symbol.iterator in headers
    ? [...(headers as Iterable<[string, string | string[] | undefined]>)]
    : Object.entries(headers)
  const out: Record<string, string | number | string[] | undefined> = {}
  let via: string | null = null
  for (const [k, v] of entries) {
    if (k.toLowerCase() === 'via') via = [via, ...(Array.isArray(v) ? v : [v])].filter(x => x !== null && x !== undefined).map(String).join(', ')
    else out[k] = v
  }
  out.via = via === null || via === '' ? OWN_VIA : `${via}, ${OWN_VIA}`
  return out
}

/** `dispatcher` sending this node's `Via` entry with every request. */
export function sendingOwnVia (dispatcher: Dispatcher): Dispatcher {
  return dispatcher.compose(dispatch => (opts, handler) => dispatch({ ...opts, headers: withOwnVia(opts.headers) }, handler))
}
