import type { PartialEntry } from '../store/index-db.ts'

export interface PartialSaverInit {
  /** The entry as the download stands now; null while there is nothing to save yet. */
  entry: () => PartialEntry | null
  /** Whether the progress is still worth keeping (running, or failed in a way that can resume). */
  wanted: () => boolean
  write: (entry: PartialEntry) => Promise<void>
  onError: (err: unknown) => void
  /** No write in flight or due any more (the download may close its file). */
  onIdle: () => void
  /** Least time between a write and one `saveSoon` asks for (default 250 ms). */
  minIntervalMs?: number
}

/**
 * Saves a download's progress entry one write at a time: saves asked for during a write collapse into one
 * more write after it, of the newest state (pieces finish faster than LevelDB writes). `save` is for
 * finished pieces, which a restart must not fetch again; `saveSoon`, for the bytes of unfinished ones, waits
 * until `minIntervalMs` after the last write.
 */
export class PartialSaver {
  private readonly init: PartialSaverInit
  private readonly minIntervalMs: number
  private writing = false
  private again = false
  /** The write asked for during the current one came from `save`: it does not wait for the interval. */
  private againNow = false
  private due: NodeJS.Timeout | null = null
  private lastAt = Number.NEGATIVE_INFINITY

  constructor (init: PartialSaverInit) {
    this.init = init
    this.minIntervalMs = init.minIntervalMs ?? 250
  }

  private idleWaiters: Array<() => void> = []

  get busy (): boolean {
    return this.writing || this.due !== null
  }

  /** Resolves once no write is in flight or due. */
  async idle (): Promise<void> {
    if (!this.busy) return
    await new Promise<void>(resolve => { this.idleWaiters.push(resolve) })
  }

  saveSoon (): void {
    if (this.writing) { this.again = true; return }
    if (this.due !== null) return
    const wait = this.lastAt + this.minIntervalMs - Date.now()
    if (wait <= 0) { this.write(); return }
    this.due = setTimeout(() => {
      this.due = null
      this.write()
    }, wait)
  }

  /** Saves now, or right after the write under way. */
  save (): void {
    if (this.due !== null) {
      clearTimeout(this.due)
      this.due = null
    }
    if (this.writing) { this.again = true; this.againNow = true; return }
    this.write()
  }

  private write (): void {
    const entry = this.init.entry()
    if (entry === null) {
      this.wentIdle()
      return
    }
    this.writing = true
    this.lastAt = Date.now()
    const write = this.init.wanted() ? this.init.write(entry) : Promise.resolve()
    write.catch(this.init.onError).finally(() => {
      this.writing = false
      const again = this.again && this.init.wanted()
      const now = this.againNow
      this.again = false
      this.againNow = false
      if (!again) this.wentIdle()
      else if (now) this.write()
      else this.saveSoon()
    })
  }

  private wentIdle (): void {
    this.init.onIdle()
    for (const resolve of this.idleWaiters.splice(0)) resolve()
  }
}
