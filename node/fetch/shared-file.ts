import type { FileHandle } from 'node:fs/promises'
import { UpstreamProtocolError } from '../errors.ts'

/**
 * A download's temp file handle, held by the download itself, by its readers and by a progress entry
 * being kept for a resume: closed once nobody holds it and `canClose()` (no progress write in flight).
 */
export class SharedFile {
  private fh: FileHandle | null
  /** The download's own reference counts from the start. */
  private refs = 1
  private readonly canClose: () => boolean
  private readonly closedCallbacks: Array<() => void> = []

  constructor (fh: FileHandle, canClose: () => boolean) {
    this.fh = fh
    this.canClose = canClose
  }

  /** The handle while it is open. */
  get handle (): FileHandle | null {
    return this.fh
  }

  retain (): FileHandle {
    if (this.fh === null) throw new UpstreamProtocolError('Download has no file')
    this.refs++
    return this.fh
  }

  release (): void {
    this.refs--
    this.closeIfIdle()
  }

  closeIfIdle (): void {
    if (this.refs > 0 || this.fh === null || !this.canClose()) return
    const fh = this.fh
    this.fh = null
    fh.close().catch(() => {})
    for (const cb of this.closedCallbacks.splice(0)) cb()
  }

  /** Calls `cb` once the file is closed (at once if it is). */
  whenClosed (cb: () => void): void {
    if (this.fh === null) cb()
    else this.closedCallbacks.push(cb)
  }
}
