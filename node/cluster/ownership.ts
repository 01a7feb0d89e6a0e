import { createHash } from 'node:crypto'

/**
 * Which of the nodes downloading the same blob fetches a unit of it from the upstream: rendezvous
 * (highest random weight) hashing of (peer, unit). Every node computes the same owner from the same
 * set without talking, and a node joining or leaving moves only the units it wins or held, so views
 * that differ for a moment cost a few duplicate units, not a reshuffle.
 */
export const SHARE_UNIT = 4 << 20

export function ownerOf (unit: number, peers: readonly string[]): string | null {
  let best: string | null = null
  let bestScore = -1
  for (const peer of peers) {
    const score = createHash('sha256').update(`${peer}\n${unit}`).digest().readUIntBE(0, 6)
    if (score > bestScore || (score === bestScore && best !== null && peer < best)) {
      best = peer
      bestScore = score
    }
  }
  return best
}
