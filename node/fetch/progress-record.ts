import type { Logger } from '../log.ts'
import type { PartialEntry } from '../store/index-db.ts'
import type { DiskPieces } from './disk-pieces.ts'
import type { BlobIdentity } from './identity.ts'
import { PartialSaver } from './partial-saver.ts'
import type { SharedFile } from './shared-file.ts'
import type { BlobMeta } from './response-meta.ts'

/** Bytes landed between progress entries besides those at each finished piece (what a restart may fetch again). */
const RECORD_EVERY = 4 << 20

export interface ProgressRecordInit {
  disk: DiskPieces
  logger: Logger
  /** What the entry says about the download; null while its first response has not come. */
  about: () => { url: string, meta: BlobMeta, expected: BlobIdentity['expected'], startedAt: number } | null
  /** Whether the progress is still worth keeping (running, or failed in a way that can resume). */
  wanted: () => boolean
  write: (entry: PartialEntry) => Promise<void>
  /** No write in flight or due any more (the download may close its file). */
  onIdle: () => void
}

/**
 * A download's progress entry, which a restart resumes from: written when a piece finishes, every few
 * MiB of an unfinished one, and, synced to disk, when the download stops to resume later.
 */
export class ProgressRecord {
  private readonly init: ProgressRecordInit
  private readonly saver: PartialSaver
  /** The temp file was synced after its last byte was written (set only once the download stopped). */
  private synced = false
  private kept: Promise<void> = Promise.resolve()

  constructor (init: ProgressRecordInit) {
    this.init = init
    this.saver = new PartialSaver({
      entry: () => {
        const about = init.about()
        return about === null ? null : init.disk.entry({ ...about, synced: this.synced })
      },
      wanted: init.wanted,
      write: init.write,
      onError: (err) => { init.logger.warn({ err }, 'could not save download progress') },
      onIdle: init.onIdle
    })
  }

  /** A write in flight or due (the download keeps its file open meanwhile). */
  get busy (): boolean {
    return this.saver.busy
  }

  /** Resolves once a download that stopped to resume later has written its entry. */
  get written (): Promise<void> {
    return this.kept
  }

  /** Writes the entry now (a new plan, ranges dropped). */
  save (): void {
    this.saver.save()
  }

  /** Bytes landed; `pieceDone`: they finished a piece, which a restart must not fetch again. */
  landed (pieceDone: boolean): void {
    if (pieceDone) this.saver.save()
    else if (this.init.disk.unrecorded >= RECORD_EVERY) this.saver.saveSoon()
  }

  /**
   * The download stops to resume later: its temp file is synced first, so the entry can say the bytes
   * it counts are on disk (they then survive a reboot: see BlobStore's start). The file is held open
   * until then.
   */
  keep (file: Pick<SharedFile, 'handle' | 'retain' | 'release'> | null): void {
    this.kept = (async () => {
      const fh = file !== null && file.handle !== null ? file.retain() : null
      if (fh !== null) {
        try {
          await fh.datasync()
          this.synced = true
        } catch (err) {
          this.init.logger.debug({ err }, 'could not sync a stopped download\'s file')
        }
      }
      this.saver.save()
      await this.saver.idle()
      if (fh !== null) file?.release()
    })()
  }
}
