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

/**
 * Why a deadline aborted: one error made once. `AbortSignal.timeout` builds a DOMException with a stack
 * trace each time one fires, and per-request deadlines fire by the thousand, long after their work ended.
 */
const DEADLINE_PASSED: Error = Object.freeze(Object.assign(new Error('deadline passed'), { name: 'TimeoutError' }))

export interface Deadline {
  readonly signal: AbortSignal
  /** The work is done: the timer goes (nothing fires later) and the parent is let go. */
  clear: () => void
}

/**
 * The signal of a deadline nobody clears, for requests whose end is not marked: its timer stays (unref'd)
 * until it fires, which costs no stack trace.
 */
export function deadlineSignal (ms: number, parent?: AbortSignal): AbortSignal {
  return deadline(ms, parent).signal
}

/** A signal that aborts after `ms`, or when `parent` does; `clear()` it once the work it bounds is done. */
export function deadline (ms: number, parent?: AbortSignal): Deadline {
  const ac = new AbortController()
  const timer = setTimeout(() => { ac.abort(DEADLINE_PASSED) }, ms)
  timer.unref()
  const onParent = (): void => { ac.abort(parent?.reason) }
  if (parent !== undefined) {
    if (parent.aborted) ac.abort(parent.reason)
    else parent.addEventListener('abort', onParent, { once: true })
  }
  return {
    signal: ac.signal,
    clear: () => {
      clearTimeout(timer)
      parent?.removeEventListener('abort', onParent)
    }
  }
}
