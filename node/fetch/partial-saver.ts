import type { PartialEntry } from '../store/index-db.ts'

export interface PartialSaverInit {
  /** The entry as the download stands now; null while there is nothing to save yet. */
  entry: () => PartialEntry | null
  /** Whether the progress is still worth keeping (running, or failed in a way that can resume). */
  wanted: () => boolean
  write: (entry: PartialEntry) => Promise<void>
  onError: (err: unknown) => void
  /** No write in flight any more (the download may close its file). */
  onIdle: () => void
}

/**
 * Saves a download's progress entry one write at a time: saves asked for during a write collapse into
 * one more write after it, of the newest state (pieces finish faster than LevelDB writes).
 */
export class PartialSaver {
  private readonly init: PartialSaverInit
  private writing = false
  private again = false

  constructor (init: PartialSaverInit) {
    this.init = init
  }

  get busy (): boolean {
    return this.writing
  }

  save (): void {
    if (this.writing) { this.again = true; return }
    const entry = this.init.entry()
    if (entry === null) return
    this.writing = true
    const write = this.init.wanted() ? this.init.write(entry) : Promise.resolve()
    write.catch(this.init.onError).finally(() => {
      this.writing = false
      if (this.again && this.init.wanted()) {
        this.again = false
        this.save()
      } else {
        this.init.onIdle()
      }
    })
  }
}
