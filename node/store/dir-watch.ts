import { stat } from 'node:fs/promises'

/** How often the cache's index directory is looked at. */
const WATCH_EVERY_MS = 2_000

/**
 * Resolves when `path` (the LevelDB index directory) is removed or replaced while the node runs (`rm -rf`
 * of the cache to clear it). The index then writes into deleted files and its lock is gone with them, so
 * a second node could start on the same directory: the node must start again on what is there now.
 * Never resolves once stopped.
 */
export function watchDirectory (path: string, intervalMs = WATCH_EVERY_MS): { lost: Promise<string>, stop: () => void } {
  const { promise: lost, resolve } = Promise.withResolvers<string>()
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const identity = stat(path).then(s => `${s.dev}:${s.ino}`, () => null)
  const look = async (): Promise<void> => {
    const was = await identity
    const now = await stat(path).then(s => `${s.dev}:${s.ino}`, () => null)
    if (stopped) return
    if (was !== null && now !== was) {
      resolve(now === null ? `the cache index ${path} was removed` : `the cache index ${path} was replaced`)
      return
    }
    timer = setTimeout(() => { look().catch(() => {}) }, intervalMs).unref()
  }
  timer = setTimeout(() => { look().catch(() => {}) }, intervalMs).unref()
  return {
    lost,
    stop: () => {
      stopped = true
      clearTimeout(timer)
    }
  }
}
