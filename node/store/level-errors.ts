/** LevelDB's answer when another process (or store) holds the index open: not damage, never reset. */
export function isLocked (err: unknown): boolean {
  const e = err as { code?: unknown, cause?: { code?: unknown } } | null
  return e?.code === 'LEVEL_LOCKED' || e?.cause?.code === 'LEVEL_LOCKED'
}
