/** Offsets readers wait for: `urgent` ones want a connection near them, `patient` ones any connection coming. */
export interface WantedOffsets { urgent: number[], patient: number[] }

interface Waiter { offset: number, patient: boolean, wake: () => void }

/**
 * Readers sleeping on a download until the byte at their offset lands (no polling). Offsets are also
 * what the scheduler fetches first.
 */
export class Waiters {
  private readonly set = new Set<Waiter>()

  /**
   * Resolves when `wake` covers `offset`, on `wakeAll`, or when the signal aborts. A `patient` waiter
   * (a peer reading along) is content with any connection already on its way to the offset.
   */
  wait (offset: number, signal?: AbortSignal, patient = false): Promise<void> {
    return new Promise(resolve => {
      if (signal?.aborted === true) { resolve(); return }
      const w: Waiter = {
        offset,
        patient,
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

  /** Offsets readers wait for; `patient` ones (see wait) apart. */
  offsets (): WantedOffsets {
    const out: WantedOffsets = { urgent: [], patient: [] }
    for (const w of this.set) (w.patient ? out.patient : out.urgent).push(w.offset)
    return out
  }
}
