import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BlobEntry } from './index-db.ts'

/** SHA-256 of a file, streamed; at most `bytesPerSecond` when given (a background check). */
export async function hashFile (path: string, options: { signal?: AbortSignal, bytesPerSecond?: number } = {}): Promise<string> {
  const h = createHash('sha256')
  const rate = options.bytesPerSecond
  const t0 = performance.now()
  let read = 0
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), async function (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      h.update(chunk)
      read += chunk.length
      if (rate === undefined) continue
      const ahead = read / rate * 1000 - (performance.now() - t0)
      if (ahead > 0) await sleep(ahead, undefined, { signal: options.signal })
    }
  }, { signal: options.signal })
  return h.digest('hex')
}

export interface BlobCheckHost {
  path: (digest: string) => string
  /** Keeps an entry's new file identity (after a re-hash, or a change time taken for the first time). */
  save: (digest: string, entry: BlobEntry) => Promise<void>
  /** The file is gone or not the blob any more: dropped from the store. */
  drop: (digest: string, reason: string) => Promise<void>
}

/**
 * Whether a committed blob's file is still the blob, from its stat: a file whose size differs is
 * dropped; one whose mtime or inode (`strict`: or change time) moved is hashed again, and dropped
 * unless it still matches. The change time catches a file rewritten in place with its mtime put back.
 */
export class BlobCheck {
  private readonly host: BlobCheckHost
  /** Blobs changed on disk being hashed again: one hash for all who ask meanwhile. */
  private readonly rehashing = new Map<string, Promise<boolean>>()

  constructor (host: BlobCheckHost) {
    this.host = host
  }

  async check (digest: string, entry: BlobEntry, strict: boolean): Promise<boolean> {
    const path = this.host.path(digest)
    const st = await this.statOrDrop(digest, path)
    if (st === null) return false
    if (st.size !== entry.size) {
      await this.host.drop(digest, 'corrupt')
      return false
    }
    if (st.mtimeMs === entry.mtimeMs && st.ino === entry.ino) {
      // An entry of an earlier version has no change time: the one the file has now is taken.
      if (entry.ctimeMs === undefined) {
        entry.ctimeMs = st.ctimeMs
        await this.host.save(digest, entry)
      }
      if (!strict || st.ctimeMs === entry.ctimeMs) return true
    }
    // Written since it was verified: hashed again before it is served, also while others read it (what
    // they were given is gone, the next client must not get it too). One hash for all who ask meanwhile;
    // a background check under way is not joined: it reads at its own slow rate.
    let check = this.rehashing.get(digest)
    if (check === undefined) {
      check = this.rehash(digest, entry, path, st).finally(() => this.rehashing.delete(digest))
      this.rehashing.set(digest, check)
    }
    return await check
  }

  /**
   * Hashes the blob's file whatever its stat says (a disk may return bad bytes under unchanged times):
   * dropped unless it matches. At most `bytesPerSecond`: a background check, not a client's wait (it
   * joins a client's hash under way rather than reading the file twice).
   */
  async verify (digest: string, entry: BlobEntry, options: { signal?: AbortSignal, bytesPerSecond?: number } = {}): Promise<boolean> {
    const running = this.rehashing.get(digest)
    if (running !== undefined) return await running
    const path = this.host.path(digest)
    const st = await this.statOrDrop(digest, path)
    return st !== null && await this.rehash(digest, entry, path, st, options)
  }

  /** The file's stat, or null once a missing file was dropped. */
  private async statOrDrop (digest: string, path: string): Promise<Stats | null> {
    try {
      return await stat(path)
    } catch {
      await this.host.drop(digest, 'missing')
      return null
    }
  }

  private async rehash (digest: string, entry: BlobEntry, path: string, st: { mtimeMs: number, ino: number, ctimeMs: number }, options: { signal?: AbortSignal, bytesPerSecond?: number } = {}): Promise<boolean> {
    let hex: string
    try {
      hex = await hashFile(path, options)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      // Unreadable (permissions, a failing disk): every request for it would fail. Fetched again instead.
      await this.host.drop(digest, `unreadable: ${(err as { code?: string }).code ?? String(err)}`)
      return false
    }
    if (hex !== digest) {
      await this.host.drop(digest, 'corrupt')
      return false
    }
    entry.mtimeMs = st.mtimeMs
    entry.ino = st.ino
    entry.ctimeMs = st.ctimeMs
    entry.verifiedAt = Date.now()
    await this.host.save(digest, entry)
    return true
  }
}
