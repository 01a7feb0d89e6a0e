interface Waiter { offset: number, wake: () => void }

/**
 * Readers sleeping on a download until the byte at their offset lands (no polling). Offsets are also
 * what the scheduler fetches first.
 */
export class Waiters {
  private readonly set = new Set<Waiter>()

  /** Resolves when `wake` covers `offset`, on `wakeAll`, or when the signal aborts. */
  wait (offset: number, signal?: AbortSignal): Promise<void> {
    return new Promise(resolve => {
      if (signal?.aborted === true) { resolve(); return }
      const w: Waiter = {
        offset,
        wake: () => {
          this.set.delete(w)
          signal?.removeEventListener('abort', w.wake)
          resolve()
        }
      }
      this.set.add(w)
      signal?.addEventListener('abort', w.wake, { once: true })
    })
  }

  /** Wakes the waiters whose offset is in [start, end). */
  wake (start: number, end: number): void {
    for (const w of this.set) {
      if (w.offset >= start && w.offset < end) w.wake()
    }
  }

  wakeAll (): void {
    for (const w of [...this.set]) w.wake()
  }

  offsets (): number[] {
    const out: number[] = []
    for (const w of this.set) out.push(w.offset)
    return out
  }
}
