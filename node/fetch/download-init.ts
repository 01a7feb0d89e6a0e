import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { FileWriter } from './file-writer.ts'
import type { GcPacer } from './gc-pacer.ts'
import type { BlobIdentity, ExpectedDigest } from './identity.ts'
import type { Limiter } from './limiter.ts'
import type { BlobMeta } from './response-meta.ts'
import type { Source, SourceResponse } from './upstream-source.ts'
import type { ParallelPassthrough } from './passthrough.ts'

/* What a Download is given, and what its `ready` promise settles to. */

export interface DownloadComponents {
  store: BlobStore
  /** Slots for downloads' further connections. */
  limiter: Limiter
  /** Slots for downloads (their first connection); `limiter` when not given. */
  downloads?: Limiter
  logger: Logger
  pacer?: GcPacer
}

export interface DownloadInit {
  identity: BlobIdentity
  source: Source
  url: string
  chunkSize: number
  concurrency: number
  /** Below this size one connection does it all. */
  minSize: number
  /** Above this size (or the cache budget) the file is passed through, not cached. */
  maxSize: number | null
  /** Upstream headers replayed to clients (lower-case names). */
  replayHeaders: readonly string[]
  /** Byte a client asked for first; the first request starts there. */
  hint: number
  maxRetries: number
  retryBaseMs: number
  /** The download fails when its connections bring no byte at all for this long (0: never). */
  quietLimitMs?: number
  /** The read timeout: the longest a pass-through request may send nothing (see StallWatch). */
  readTimeoutMs?: number
  /** Start with synchronous page-cache writes (default true). */
  syncWrites?: boolean
  /** Makes the temp file's writer (a seam for tests: a disk that fills up). */
  openWriter?: (fd: number, init: { synchronous?: boolean, onIdle?: () => void }) => FileWriter
  /** Asked without a client's credentials: members of a keyed cluster may be given it by its URL key. */
  shareable?: boolean
  /** With credentials: the hash naming them (see credentialOf). */
  credential?: string | null
  /**
   * The first response when the caller already made it (keying by final URL), with its connection slot
   * and the range it asked for.
   */
  first?: { response: SourceResponse, release: () => void, ask: { start: number, end: number } }
}

export type ReadyResult =
  | { kind: 'download', meta: BlobMeta }
  /** `source`: the download's (in a cluster, the members first); `expected`: the digest the blob must have. */
  | { kind: 'passthrough', meta: BlobMeta, first: SourceResponse, parallel: ParallelPassthrough | null, source: Source, expected: ExpectedDigest | null }
  | { kind: 'upstream-response', status: number, headers: Record<string, string>, body: Buffer }
