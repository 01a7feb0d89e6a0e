import { z } from 'zod'
import { WireError, WIRE_ERROR_CODES } from './errors.ts'
import { LIMITS } from './ids.ts'
import { MAX_URL_NAME, OTHER_DIGEST_NAME, URL_NAME } from './names.ts'

/**
 * Control and membership messages: JSON bodies inside length-prefixed frames (the framing is the
 * stream layer's; the size limit is LIMITS.maxMessageBytes). decode() validates strictly and throws
 * WireError('BAD_MESSAGE') on anything else, so a handler never sees a malformed message.
 */

const b64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/).max(LIMITS.maxMessageBytes)
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const shortText = z.string().max(1024)

/**
 * Blob a peer is asked about: `sha256:<hex>`, `sha512:<hex>`, `git-sha1:<hex>`, or in a keyed cluster a
 * download's cache key `url:<canonical URL>` (see names.ts).
 */
export const blobKey = z.union([
  z.string().regex(/^sha256:[0-9a-f]{64}$/),
  z.string().regex(OTHER_DIGEST_NAME),
  z.string().max(MAX_URL_NAME).regex(URL_NAME)
])

const errorMessage = z.strictObject({ t: z.literal('error'), code: z.enum(WIRE_ERROR_CODES), message: shortText })

export const memberMessage = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('hello'), cluster: shortText, mode: z.enum(['open', 'keyed']), nonce: b64 }),
  z.strictObject({ t: z.literal('challenge'), nonce: b64, proof: b64 }),
  z.strictObject({ t: z.literal('proof'), proof: b64 }),
  z.strictObject({ t: z.literal('welcome') }),
  errorMessage
])
export type MemberMessage = z.infer<typeof memberMessage>

export const controlRequest = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('have'), key: blobKey }),
  z.strictObject({ t: z.literal('ticket'), key: blobKey }),
  z.strictObject({ t: z.literal('stats') }),
  /** "Your bytes of this blob failed my check": the holder re-checks its copy (answered with `have`). */
  z.strictObject({ t: z.literal('corrupt'), key: blobKey })
])
export type ControlRequest = z.infer<typeof controlRequest>

/** What clients of the blob are told (replayed like a local cache hit's). */
export const blobMetaWire = z.strictObject({
  contentType: shortText.nullable(),
  etag: shortText.nullable(),
  lastModified: shortText.nullable(),
  headers: z.record(z.string().max(128), shortText).refine((h) => Object.keys(h).length <= 32)
})
export type BlobMetaWire = z.infer<typeof blobMetaWire>

export const haveAnswer = z.strictObject({
  t: z.literal('have'),
  /** complete: a verified blob; partial: a download in flight with `bitmap` of finished pieces. */
  state: z.enum(['complete', 'partial', 'none']),
  size: count.optional(),
  pieceSize: count.optional(),
  bitmap: b64.optional(),
  /** Ranges [start, end) of a download in flight being fetched from its upstream right now. */
  active: z.array(z.tuple([count, count])).max(1024).optional(),
  /** Ranges [start, end) of a download in flight already on disk (finer than the bitmap's pieces). */
  written: z.array(z.tuple([count, count])).max(1024).optional()
})
export type HaveAnswer = z.infer<typeof haveAnswer>

export const ticketAnswer = z.strictObject({
  t: z.literal('ticket'),
  ticket: z.string().max(2048),
  /** Data-plane port; the host is the address the control connection reached. */
  port: z.number().int().min(1).max(65535),
  /** The port speaks HTTPS with the certificate of this sha256 (hex): the asker accepts no other. */
  cert: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  expiresAt: count,
  size: count,
  complete: z.boolean(),
  meta: blobMetaWire,
  /**
   * A name other than a sha256 held complete: the sha256 of the blob it names, which the ticket and the
   * data port use. (Absent for sha256 names, and for other names still downloading: those go by the name's id.)
   */
  digest: z.string().regex(/^[0-9a-f]{64}$/).optional()
})
export type TicketAnswer = z.infer<typeof ticketAnswer>

/**
 * A node's numbers. Unknown fields are dropped, not refused: a newer node's stats (a field added, as
 * `host` and `peer_bans` were) stay readable to an older one.
 */
export const nodeStats = z.object({
  peer_id: shortText,
  /** The machine's host name, so people can tell the nodes apart. */
  host: shortText.optional(),
  cluster: shortText,
  uptime_s: count,
  cache: z.object({ size_bytes: count, blobs: count, max_bytes: count }),
  hits: count,
  misses: count,
  bytes_from_cache: count,
  bytes_from_peers: count,
  bytes_from_upstream: count,
  bytes_to_peers: count,
  active_downloads: count,
  peers: count,
  /** Peers this node banned for bad bytes since it started. */
  peer_bans: count.optional()
})
export type NodeStats = z.infer<typeof nodeStats>

export const statsAnswer = z.strictObject({ t: z.literal('stats'), stats: nodeStats })
export type StatsAnswer = z.infer<typeof statsAnswer>

export const controlAnswer = z.discriminatedUnion('t', [haveAnswer, ticketAnswer, statsAnswer, errorMessage])
export type ControlAnswer = z.infer<typeof controlAnswer>
export type ErrorMessage = z.infer<typeof errorMessage>

export function encodeMessage (message: unknown): Uint8Array {
  const bytes = Buffer.from(JSON.stringify(message), 'utf8')
  if (bytes.length > LIMITS.maxMessageBytes) throw new WireError('BAD_MESSAGE', 'message too large')
  return bytes
}

/** Parses and validates one message body; WireError('BAD_MESSAGE') for anything malformed. */
export function decodeMessage<T> (schema: z.ZodType<T>, bytes: Uint8Array): T {
  if (bytes.length > LIMITS.maxMessageBytes) throw new WireError('BAD_MESSAGE', 'message too large')
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    throw new WireError('BAD_MESSAGE', 'not JSON')
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new WireError('BAD_MESSAGE', `invalid message: ${parsed.error.issues[0]?.message ?? 'unknown'}`)
  return parsed.data
}

/** A control answer that is an error becomes a thrown WireError with the peer's code. */
export function expectAnswer<T extends ControlAnswer['t']> (answer: ControlAnswer, t: T): Extract<ControlAnswer, { t: T }> {
  if (answer.t === 'error') throw new WireError(answer.code, answer.message)
  if (answer.t !== t) throw new WireError('BAD_MESSAGE', `expected a ${t} answer`)
  return answer as Extract<ControlAnswer, { t: T }>
}
