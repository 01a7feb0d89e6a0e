/**
 * Error codes that cross the wire between peers (in control answers and data-plane replies). They are
 * separate from the node's local catalogue: a peer's code says what the peer refused, never why our
 * own request failed.
 */
export const WIRE_ERROR_CODES = [
  /** The message could not be decoded or broke a limit; the stream is reset. */
  'BAD_MESSAGE',
  /** The peer has not proven membership of this cluster (no or wrong cluster key). */
  'NOT_MEMBER',
  /** Another cluster name or another protocol mode (keyed vs open). */
  'WRONG_CLUSTER',
  /** The blob is not held or not shareable. */
  'NOT_FOUND',
  /** Ticket missing, forged, expired or for another blob or address. */
  'BAD_TICKET',
  /** Too many requests in flight; ask again later or elsewhere. */
  'BUSY',
  /** The peer failed to answer for a reason of its own. */
  'INTERNAL'
] as const

export type WireErrorCode = typeof WIRE_ERROR_CODES[number]

export function isWireErrorCode (value: unknown): value is WireErrorCode {
  return typeof value === 'string' && (WIRE_ERROR_CODES as readonly string[]).includes(value)
}

/** A peer answered with a wire error, or sent something that broke the protocol. */
export class WireError extends Error {
  readonly code: WireErrorCode
  constructor (code: WireErrorCode, message: string = code) {
    super(message)
    this.name = 'WireError'
    this.code = code
  }
}
