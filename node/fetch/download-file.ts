import type { FileHandle } from 'node:fs/promises'
import { cacheDiskError, UpstreamProtocolError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { KeyEntry, PartialEntry } from '../store/index-db.ts'
import type { DiskPieces } from './disk-pieces.ts'
import { FileWriter } from './file-writer.ts'
import { SharedFile } from './shared-file.ts'
import { openTempFile } from './temp-file.ts'

export interface DownloadFileInit {
  store: BlobStore
  key: string
  log: Logger
  disk: DiskPieces
  /** No progress write in flight (the file may be closed). */
  recordIdle: () => boolean
  /** Makes the writer (a seam for tests: a disk that fills up). */
  openWriter?: (fd: number, init: { synchronous?: boolean, onIdle?: () => void }) => FileWriter
  syncWrites?: boolean
}

/**
 * A download's temp file: opened fresh or resumed from an earlier run's, written at piece offsets,
 * held by the download, its readers and a kept progress entry, and committed into the store once
 * the blob is verified.
 */
export class DownloadFile {
  readonly path: string
  private readonly init: DownloadFileInit
  private shared: SharedFile | null = null
  private fileWriter: FileWriter | null = null

  constructor (init: DownloadFileInit) {
    this.init = init
    this.path = init.store.layout.tempPath(init.key)
  }

  /**
   * Opens the file (resuming `resume` when it is still there); null when the cache disk refuses a file
   * now (read-only, not permitted, out of inodes): that costs the cache, not the client.
   */
  async open (resume: PartialEntry | undefined, size: number | null, pieces: { chunkSize: number, concurrency: number, maxAutoPiece?: number }): Promise<{ fh: FileHandle, resumed: boolean } | null> {
    let opened
    try {
      opened = await openTempFile(this.path, resume, size, this.init.disk, pieces)
    } catch (err) {
      const refused = cacheDiskError(err)
      if (refused === null) throw err
      this.init.log.warn({ key: this.init.key, err: refused.message }, 'the cache disk refused a download\'s file; passing the file through uncached')
      return null
    }
    const { fh } = opened
    // Not closed under a write still on the thread pool: its descriptor could be another file's by then.
    this.shared = new SharedFile(fh, () => this.init.recordIdle() && (this.fileWriter?.idle ?? true))
    const openWriter = this.init.openWriter ?? ((fd, o) => new FileWriter(fd, o))
    this.fileWriter = openWriter(fh.fd, { synchronous: this.init.syncWrites, onIdle: () => { this.closeIfIdle() } })
    return opened
  }

  /** The handle while it is open. */
  get handle (): FileHandle | null {
    return this.shared?.handle ?? null
  }

  get writer (): FileWriter {
    if (this.fileWriter === null) throw new UpstreamProtocolError('Download has no file')
    return this.fileWriter
  }

  retain (): FileHandle {
    if (this.shared === null) throw new UpstreamProtocolError('Download has no file')
    return this.shared.retain()
  }

  release (): void {
    this.shared?.release()
  }

  closeIfIdle (): void {
    this.shared?.closeIfIdle()
  }

  /** Moves the verified file into the store under its digest, and indexes `entry` under the key. */
  async commit (entry: KeyEntry): Promise<void> {
    const { store } = this.init
    await store.commit(this.init.key, { path: this.path, fh: this.handle as FileHandle }, entry)
    // Readers may still be streaming it from this file: in use until they are done (evicting it now
    // would free nothing while the file is open, and the next plan would evict more).
    const unuse = store.use(entry.digest)
    if (this.shared === null) unuse()
    else this.shared.whenClosed(unuse)
  }
}
