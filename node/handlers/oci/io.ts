import type { Readable } from 'node:stream'
import { UpstreamProtocolError } from '../../errors.ts'
import { toUpstreamError } from '../../upstream/errors.ts'
export { waitFor } from '../../abort.ts'
/** The caller's signal combined with a deadline. */
export { deadlineSignal as deadline } from '../../abort.ts'

/** Reads a small body (token JSON, manifest, error document) up to `limit` bytes; more is an error. */
export async function readSmall (body: Readable, limit: number, origin?: string): Promise<Buffer> {
  const parts: Buffer[] = []
  let n = 0
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      n += chunk.length
      if (n > limit) throw new UpstreamProtocolError('Upstream document too large', { detail: { limit } })
      parts.push(chunk)
    }
  } catch (err) {
    body.destroy()
    throw toUpstreamError(err, origin)
  }
  return Buffer.concat(parts)
}


/** Lower-case header map from a raw list; repeated lines are joined with ", ". */
export function headerMap (raw: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = (raw[i] as string).toLowerCase()
    const v = raw[i + 1] as string
    out[k] = out[k] === undefined ? v : `${out[k]}, ${v}`
  }
  return out
}
