/**
 * An attempt that brought less than this before it failed made no real progress: a proxy that sends a
 * few KiB of each response and then holds the body would otherwise reset the retry count on every
 * attempt and keep a download (and its client) crawling for hours.
 */
export const REAL_PROGRESS = 64 << 10

/** Whether an attempt that moved a position from `before` to `after` counts as progress. */
export function realProgress (before: number, after: number): boolean {
  return after - before >= REAL_PROGRESS
}
