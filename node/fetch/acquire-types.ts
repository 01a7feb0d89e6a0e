import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { BlobChunks, ChunkCursor } from './blob-chunks.ts'
import { signatureParams } from '../signed-url.ts'
import type { BlobIdentity } from './identity.ts'
import type { BlobMeta } from './response-meta.ts'
import type { Source } from './upstream-source.ts'

/* What the fetch engine's callers give it and get from it (fetcher.ts re-exports these). */

export interface UpstreamRequest {
  url: URL
  /** Headers for the upstream (e.g. authorization); never sent across origins on redirect. */
  headers?: Record<string, string>
  /**
   * A name for the client credentials the request is made with when they are not in its headers (a
   * registry token the node fetches for that client): what it fetches is that client's, as with headers.
   */
  credential?: string
}

export interface AcquireOptions {
  signal?: AbortSignal
  /** First byte the client wants (a Range start); the download fetches it first. */
  hint?: number
  chunkSize?: number
  concurrency?: number
  minSize?: number
  maxSize?: number | null
  replayHeaders?: readonly string[]
  /**
   * Key a URL identity by the URL that finally serves the bytes (after redirects, signature and
   * expiry parameters stripped) instead of the one asked for (`cache_key_source: final`). Costs one
   * upstream request per acquire, also for hits: the redirect may point somewhere else by now.
   */
  keyByFinalUrl?: boolean
  /**
   * A file cached under a URL key (no published digest) is checked with the upstream (one 1-byte range
   * request) once the upstream last confirmed it this long ago; a changed file is fetched again.
   * Absent: URL-keyed files are taken as immutable.
   */
  revalidateAfterMs?: number
}

export interface BlobHandle {
  readonly kind: 'blob'
  /** cache: committed blob; download: in flight (joined or started); passthrough: not cacheable. */
  readonly from: 'cache' | 'download' | 'passthrough'
  readonly meta: BlobMeta
  /** A cache hit by its key entry: when the upstream last served or confirmed the file (ms since the epoch). */
  readonly confirmedAt?: number
  /** Its recheck with the upstream was due and the upstream could not tell (away, or an error): served stale. */
  readonly stale?: boolean
  /** Streams bytes [start, end). */
  open: (start: number, end: number) => Readable
  /** Bytes [start, end) in recycled buffers, for a consumer that writes each before the next (a client's response). */
  chunks?: (start: number, end: number) => BlobChunks
  /**
   * Fetched with a client's credentials (`credential` names them): another client is given it only once
   * the upstream let it have the file too (see AccessGuard).
   */
  readonly fetchedFor?: string
  /** The upstream let an anonymous client have it: it is public (a blob whose index entry was rebuilt). */
  readonly onPublic?: () => void
  /** Must be called once the handle's streams are done. Idempotent. */
  release: () => void
}

export interface UpstreamResponse {
  readonly kind: 'upstream-response'
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: Buffer
}

export type Acquired = BlobHandle | UpstreamResponse

export interface ActiveDownload {
  key: string
  url: string
  size: number | null
  received: number
  written: number
  connections: number
  started_at: string
  state: string
}

/** A download in flight that peers may read along (see `Fetcher.inFlight`). */
export interface InFlightBlob {
  readonly size: number
  readonly meta: BlobMeta
  /**
   * [start, end) as it lands on disk, unverified bytes and the final byte included; the download
   * fetches what a peer waits for first, and the cursor throws after `idleMs` without a new byte.
   * Null if the file is gone.
   */
  cursor: (start: number, end: number, idleMs: number) => (ChunkCursor & { readonly bytesRead: number }) | null
  /** Which pieces are on disk now (from memory: no index read), or null before the plan is made. */
  pieces: () => { pieceSize: number, bitmap: string } | null
  /** The byte ranges on disk now (at most `max` of them). */
  written: (max: number) => Array<[number, number]>
  /** Asked without a client's credentials (see DownloadInit.shareable). */
  readonly shareable: boolean
}

export interface SourceForOptions { shareable?: boolean, started?: boolean, etag?: string, lastModified?: string, upstreamDown?: boolean }

/** Extra sources for new downloads (the LAN cluster): wraps a download's upstream source. */
export interface SourceProvider {
  /**
   * `shareable`: asked without a client's credentials (may be shared by its URL key, not only by digest).
   * `started`: the download's first response came from the upstream already (keying by final URL), with `etag`.
   * `upstreamDown`: the upstream just failed to answer the URL (unreachable, 5xx): members are asked first.
   */
  sourceFor: (identity: BlobIdentity, upstream: Source, options?: SourceForOptions) => Source
  /** Whether peers would be a source for this blob (`shareable`: asked without credentials). */
  shares?: (identity: BlobIdentity, shareable: boolean) => boolean
}

/** Request headers that carry a client's credentials. */
const CREDENTIALS = new Set(['authorization', 'cookie', 'proxy-authorization'])

/**
 * What in a request is a client's credentials: its credential headers, and the signature of a signed
 * URL the client sent itself (signature parameters are left out of cache keys, so without this anyone
 * asking the bare URL would get what only the signature allowed).
 */
function credentialParts (upstream: UpstreamRequest): string[] {
  const parts = Object.entries(upstream.headers ?? {}).filter(([h]) => CREDENTIALS.has(h.toLowerCase())).map(([h, v]) => `${h.toLowerCase()}: ${v}`)
  if (upstream.credential !== undefined) parts.push(`credential: ${upstream.credential}`)
  const query = upstream.url.searchParams
  if (query.size > 0) {
    const signing = signatureParams(query.keys())
    for (const [k, v] of query) if (signing.has(k.toLowerCase())) parts.push(`?${k.toLowerCase()}=${v}`)
  }
  return parts
}

/**
 * The request without the client's credential headers, or null when its credentials cannot be taken
 * off (a signed URL's signature, a registry login held by the node).
 */
export function withoutCredentials (upstream: UpstreamRequest): UpstreamRequest | null {
  if (upstream.credential !== undefined) return null
  const headers = Object.fromEntries(Object.entries(upstream.headers ?? {}).filter(([h]) => !CREDENTIALS.has(h.toLowerCase())))
  const bare = { url: upstream.url, headers }
  return hasCredentials(bare) ? null : bare
}

/** Whether the request carries a client's credentials (what it fetches is then kept from peers). */
export function hasCredentials (upstream: UpstreamRequest): boolean {
  return credentialParts(upstream).length > 0
}

/** A short hash naming the request's credentials (null without any): whom a private blob was fetched for. */
export function credentialOf (upstream: UpstreamRequest): string | null {
  const parts = credentialParts(upstream).sort()
  return parts.length === 0 ? null : createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 32)
}
