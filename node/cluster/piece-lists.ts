import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isSha256Hex } from '../../protocol/cid.ts'
import { PIECE_HASH_BYTES, PIECE_HASH_UNIT, PieceHasher, pieceListBytes } from '../../protocol/pieces.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'

/**
 * Piece-hash lists of committed blobs, made by reading the blob once (which also re-checks its whole
 * digest: a blob that no longer matches is dropped, never offered to peers) and kept beside the cache
 * (`<dir>/<hex>`). One computation per blob at a time.
 */
export class PieceLists {
  private readonly store: BlobStore
  private readonly log: Logger
  private readonly dir: string
  private readonly pending = new Map<string, Promise<Buffer | null>>()
  private readonly abort = new AbortController()
  private warming: Promise<void> = Promise.resolve()

  constructor (components: { store: BlobStore, logger: Logger }, init: { dir: string }) {
    this.store = components.store
    this.log = components.logger
    this.dir = init.dir
  }

  stop (): void {
    this.abort.abort()
  }

  /**
   * The list of a committed blob; null when the blob is not held (or turned out corrupt). Making it
   * re-checks the whole digest unless `fresh` (the blob was verified at its commit a moment ago).
   */
  async get (digest: string, options: { fresh?: boolean } = {}): Promise<Buffer | null> {
    if (!isSha256Hex(digest)) return null
    const size = this.store.blobSize(digest)
    if (size === undefined) return null
    if (size <= PIECE_HASH_UNIT) return Buffer.from(digest, 'hex')
    let p = this.pending.get(digest)
    if (p === undefined) {
      p = this.load(digest, size, options.fresh !== true).finally(() => this.pending.delete(digest))
      this.pending.set(digest, p)
    }
    return await p
  }

  /**
   * Hashes a held blob again (a peer found its bytes wrong): a blob that no longer matches its digest
   * is dropped, a list that no longer matches the blob is made again. True if the blob is still held.
   */
  async recheck (digest: string): Promise<boolean> {
    const size = this.store.blobSize(digest)
    if (!isSha256Hex(digest) || size === undefined) return false
    await this.pending.get(digest)?.catch(() => null)
    await this.forget(digest)
    const p = this.load(digest, size, true).finally(() => this.pending.delete(digest))
    this.pending.set(digest, p)
    return await p !== null
  }

  /**
   * Makes a just-committed blob's list in the background, one blob at a time, so the first peer that
   * asks for it does not wait for the whole blob to be read and hashed. Only the pieces are hashed: the
   * commit has just verified the whole digest (half the CPU, while the node is likely still busy).
   */
  warm (digest: string): void {
    if (this.abort.signal.aborted) return
    this.warming = this.warming.then(async () => { await this.get(digest, { fresh: true }) }).catch(() => {})
  }

  /**
   * Keeps the list a download made from the bytes it verified, before the blob is committed: the
   * warm-up after the commit then finds it instead of reading the blob back.
   */
  put (digest: string, list: Buffer): void {
    if (!isSha256Hex(digest) || list.length <= PIECE_HASH_BYTES || this.abort.signal.aborted) return
    const p = this.save(join(this.dir, digest), list).then(() => list, (err: unknown) => {
      this.log.warn({ err, digest }, 'could not keep a piece list')
      return null
    }).finally(() => { if (this.pending.get(digest) === p) this.pending.delete(digest) })
    this.pending.set(digest, p)
  }

  /** Forgets a blob's list (it was dropped). */
  async forget (digest: string): Promise<void> {
    if (isSha256Hex(digest)) await rm(join(this.dir, digest), { force: true })
  }

  private async load (digest: string, size: number, checkWhole: boolean): Promise<Buffer | null> {
    const path = join(this.dir, digest)
    const saved = await readFile(path).catch(() => null)
    if (saved !== null && saved.length === pieceListBytes(size)) return saved
    if (!(await this.store.hasDigest(digest, { forPeer: true }))) return null
    const release = this.store.use(digest)
    const pieces = new PieceHasher()
    const whole = checkWhole ? createHash('sha256') : null
    let complete: boolean
    try {
      complete = await this.readAll(this.store.layout.blobPath(digest), size, chunk => {
        pieces.update(chunk)
        whole?.update(chunk)
      })
    } finally {
      release()
    }
    if (!complete || (whole !== null && whole.digest('hex') !== digest)) {
      this.log.warn({ digest }, 'blob does not match its digest; dropped')
      await this.store.drop(digest, 'corrupt')
      return null
    }
    const list = pieces.digest()
    await this.save(path, list)
    return list
  }

  /**
   * Reads a blob through one reused buffer (fresh buffers per read would leave a GiB of garbage per
   * GiB read for the collector). False when the file is shorter than `size`.
   */
  private async readAll (file: string, size: number, take: (chunk: Buffer) => void): Promise<boolean> {
    const fh = await open(file, 'r')
    try {
      const buf = Buffer.allocUnsafe(Math.min(PIECE_HASH_UNIT, Math.max(1, size)))
      for (let pos = 0; pos < size;) {
        this.abort.signal.throwIfAborted()
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos)
        if (bytesRead === 0) return false
        take(buf.subarray(0, bytesRead))
        pos += bytesRead
      }
      return true
    } finally {
      await fh.close()
    }
  }

  private async save (path: string, list: Buffer): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(temp, list)
    await rename(temp, path)
  }
}
