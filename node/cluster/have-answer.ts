import type { Holder } from './routing.ts'

/**
 * How far from `start` a member's report of the blob (its "have" answer) covers [start, end]
 * (inclusive): `end` when every piece in its bitmap is there, the end of a range it has on disk or is
 * fetching from its upstream that starts at or before `start` (cut to `end`), else null.
 */
export function coveredTo (answer: Holder['answer'] | undefined, start: number, end: number): number | null {
  if (answer?.bitmap !== undefined && answer.pieceSize !== undefined && answer.pieceSize > 0) {
    const bits = Buffer.from(answer.bitmap, 'base64')
    let all = true
    for (let i = Math.floor(start / answer.pieceSize); i <= Math.floor(end / answer.pieceSize) && all; i++) {
      all = ((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0
    }
    if (all) return end
  }
  for (const ranges of [answer?.written, answer?.active]) {
    for (const [s, e] of ranges ?? []) {
      if (s <= start && start < e) return Math.min(end, e - 1)
    }
  }
  return null
}
