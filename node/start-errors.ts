import { AimirrorError, StartError } from './errors.ts'

/** What a failed system call means, in words: the errno code alone says little to most users. */
const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is already in use (by another aimirror node or another program)',
  EADDRNOTAVAIL: 'this machine has no such address',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a directory',
  ENOENT: 'no such file or directory',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full'
}

/** The first errno code in an error's cause chain (libraries wrap the system error, often twice). */
function errnoCode (err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code
    if (typeof code === 'string' && code in REASONS) return code
    // libp2p gathers the failures of its listen addresses into one message.
    const named = Object.keys(REASONS).find(c => e instanceof Error && e.message.includes(c))
    if (named !== undefined) return named
  }
  return undefined
}

/**
 * A start-up failure as the user must read it: what could not be done, the config field that decides
 * it, and why. Errors of the catalogue already say so and pass unchanged.
 */
export function startError (what: string, field: string, err: unknown): AimirrorError {
  if (err instanceof AimirrorError) return err
  const code = errnoCode(err)
  const reason = code !== undefined ? REASONS[code] : (err instanceof Error ? err.message : String(err))
  return new StartError(`${what} (${field}): ${reason}`, { cause: err })
}

/** Runs one start-up step; its failure becomes a StartError (see startError). */
export async function startStep<T> (what: string, field: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    throw startError(what, field, err)
  }
}
