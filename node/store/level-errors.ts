/** LevelDB's answer when another process (or store) holds the index open: not damage, never reset. */
export function isLocked (err: unknown): boolean {
  const e = err as { code?: unknown, cause?: { code?: unknown } } | null
  return e?.code === 'LEVEL_LOCKED' || e?.cause?.code === 'LEVEL_LOCKED'
}

const REFUSALS: Array<[code: string, text: string]> = [
  ['ENOSPC', 'No space left on device'],
  ['EDQUOT', 'Disk quota exceeded'],
  ['EROFS', 'Read-only file system'],
  ['EACCES', 'Permission denied'],
  ['EPERM', 'Operation not permitted']
]

/**
 * Why the disk refused a write (full, read-only, not permitted), from an error or its causes (LevelDB
 * says it in its message only); null for anything else. Such an index is not damaged: making it anew
 * would lose it and gain nothing.
 */
export function diskRefusal (err: unknown): string | null {
  for (let e = err as { code?: unknown, message?: unknown, cause?: unknown } | null, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = e.cause as typeof e, depth++) {
    for (const [code, text] of REFUSALS) {
      if (e.code === code || (typeof e.message === 'string' && e.message.includes(text))) return text.toLowerCase()
    }
  }
  return null
}
