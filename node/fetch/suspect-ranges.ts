import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { hashFileRange } from './file-hash.ts'
import type { SuspectRange } from './upstream-source.ts'

/** sha256 of the bytes of each range in the file. */
async function rangeHashes (fh: FileHandle, ranges: readonly SuspectRange[]): Promise<string[]> {
  const buf = Buffer.allocUnsafe(1 << 20)
  const out: string[] = []
  for (const r of ranges) {
    const hash = createHash('sha256')
    await hashFileRange(fh, r.start, r.end, hash, buf)
    out.push(hash.digest('hex'))
  }
  return out
}

/**
 * Ranges peers sent unverified into a download whose blob then failed its digest. Their bytes are hashed
 * before the download fetches them again, and once more after the blob matched: a sender whose bytes
 * changed sent wrong ones; one whose bytes came again the same sent the blob's.
 */
export class SuspectTrial {
  readonly ranges: readonly SuspectRange[]
  private before: Promise<string[]> | null = null

  constructor (ranges: readonly SuspectRange[]) {
    this.ranges = ranges
  }

  get peers (): Set<string> {
    return new Set(this.ranges.map(r => r.peer))
  }

  /** Hashes what the peers sent; resolves before their ranges may be written again. */
  async record (fh: FileHandle): Promise<void> {
    this.before = rangeHashes(fh, this.ranges)
    await this.before
  }

  /** The senders whose bytes differ from the file's now (the blob, verified); all of them when unknown. */
  async guilty (fh: FileHandle): Promise<Set<string>> {
    if (this.before === null) return this.peers
    const [before, after] = await Promise.all([this.before, rangeHashes(fh, this.ranges)])
    return new Set(this.ranges.filter((_, i) => before[i] !== after[i]).map(r => r.peer))
  }
}
