import { AbortedError } from './errors.ts'

/**
 * Waits for a shared promise, but lets one caller stop waiting when its own signal aborts: the shared
 * work (a single-flight download, lookup or token request) goes on for the others.
 */
export async function waitFor<T> (p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return await p
  if (signal.aborted) throw new AbortedError(undefined, { cause: signal.reason })
  return await new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError(undefined, { cause: signal.reason }))
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(v => { signal.removeEventListener('abort', onAbort); resolve(v) },
      (err: unknown) => { signal.removeEventListener('abort', onAbort); reject(err) })
  })
}
