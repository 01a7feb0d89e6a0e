/** How long a member may take to answer a ping before it counts as gone (frozen, or its process died). */
export const PING_MS = 2000

export interface PingCheckInit {
  timeoutMs?: number
  /** The peer answered or asked something else just now: a ping that timed out meanwhile was slow, not lost. */
  heardRecently?: () => boolean
}

export interface PingCheck {
  alive: boolean
  ms: number
  /** Alive only because it was heard from while its ping timed out. */
  heard?: boolean
  err?: string
}

/**
 * Whether a peer answers `ping` (called with the signal that ends it). A peer whose process died fails
 * at once (its connections are refused or reset); a frozen one lets the deadline pass. A timeout is
 * not the last word when the peer was heard from meanwhile (`heardRecently`): on a loaded machine a
 * ping's round trip through libp2p takes seconds while the peer goes on answering.
 */
export async function answersPing (ping: (signal: AbortSignal) => Promise<unknown>, init: PingCheckInit = {}): Promise<PingCheck> {
  const began = performance.now()
  const signal = AbortSignal.timeout(init.timeoutMs ?? PING_MS)
  try {
    await ping(signal)
    return { alive: true, ms: performance.now() - began }
  } catch (e) {
    const ms = performance.now() - began
    if (signal.aborted && init.heardRecently?.() === true) return { alive: true, ms, heard: true }
    return { alive: false, ms, err: (e as Error).message }
  }
}
