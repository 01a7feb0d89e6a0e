import type { Readable } from 'node:stream'

/**
 * Public shapes of the metadata cache: index pages, packuments, repodata, PACKAGES, API JSON, manifests by
 * tag. Small mutable documents kept on disk with a short freshness window, revalidated upstream, served
 * stale when upstream fails.
 */

export interface MetadataRequest {
  /**
   * Cache key. Everything the upstream body depends on must be part of it: the URL, the representation
   * asked for (Accept variant) and, for private content, the credential scope.
   */
  readonly key: string
  /** Upstream URL (GET). */
  readonly url: URL
  /**
   * Request headers sent upstream (Accept, Authorization, User-Agent, ...). `Accept-Encoding` defaults to
   * gzip: bodies are stored decoded. Conditional headers are added by the cache.
   */
  readonly headers?: Readonly<Record<string, string>>
  /** Freshness: a cached answer younger than this is served without asking upstream. */
  readonly ttlMs: number
  /** Freshness of a remembered 404/410 (default min(ttlMs, 5 s)). */
  readonly negativeTtlMs?: number
  /**
   * Cheap revalidation (OCI tags): when stale, HEAD the URL first; if this returns true for the HEAD's
   * headers (lower-case names) the cached body is still current and only its age is reset.
   */
  readonly headCheck?: (headers: Readonly<Record<string, string>>, cached: MetadataInfo) => boolean
  /**
   * The client asked for a revalidated answer (`Cache-Control: no-cache` / `max-age=0`, see
   * `clientRevalidates`): a cached copy is confirmed upstream (conditional request) even within its TTL.
   * Upstream down, failing or slow: the copy is still served, marked stale.
   */
  readonly revalidate?: boolean
  /** Aborts this caller's wait only; a shared upstream request continues for the other callers. */
  readonly signal?: AbortSignal
  /**
   * Keys of other representations this client also takes (another format its Accept allows): with
   * nothing cached under `key` and the upstream unreachable or failing, one of theirs is served stale.
   */
  readonly alternates?: readonly string[]
}

/** What is known about a cached body without reading it. */
export interface MetadataInfo {
  readonly url: string
  readonly status: number
  /** Upstream headers describing the body (lower-case names; no framing, coding or ETag headers). */
  readonly headers: Readonly<Record<string, string>>
  /** Upstream validators, used to revalidate (and for callers that must repeat upstream's ETag). */
  readonly upstream: { readonly etag: string | null, readonly lastModified: string | null }
  /** sha256 hex of the stored (decoded) body. */
  readonly sha256: string
  readonly size: number
  /** When upstream last confirmed this body (ms since epoch). */
  readonly fetchedAt: number
}

export interface MetadataBody {
  readonly size: number
  /** Streams bytes [start, end) of the body (end defaults to size). */
  open: (start?: number, end?: number) => Readable
  /** The whole body in memory: only for pages a caller must parse or rewrite. */
  read: () => Promise<Buffer>
}

export interface MetadataResult {
  /**
   * The upstream status this answer reproduces: 200 and 404/410 come from the cache (fresh, revalidated
   * or stale); any other status is upstream's live answer, passed on uncached.
   */
  readonly status: number
  /**
   * Headers to send (lower-case): the upstream's descriptive headers, plus `warning` and
   * `x-aimirror-stale` when stale. Framing (length, coding) and ETag are the caller's (see etag/body).
   */
  readonly headers: Readonly<Record<string, string>>
  /** The mirror's strong ETag for this body (derived from its bytes); null for uncached answers. */
  readonly etag: string | null
  readonly lastModified: string | null
  readonly body: MetadataBody
  /** Served from the cache although upstream could not confirm it (unreachable, 5xx, timeout, slow). */
  readonly stale: boolean
  /** True when no upstream request was made for this answer (fresh hit, or stale). */
  readonly fromCache: boolean
  /** The cached entry behind this answer; null for uncached answers. */
  readonly info: MetadataInfo | null
}

/**
 * A body rewrite applied before serving; its output is cached on disk beside the body it came from. `id`
 * names the transformation and every input it depends on besides the body (e.g. the mirror base URL),
 * so equal ids always give equal output.
 */
export type MetadataRewrite = {
  readonly id: string
  /** Whole-body form, held in memory: for documents known to be small (bigger ones are served unrewritten). */
  readonly apply: (body: Buffer, info: MetadataInfo) => Buffer | Promise<Buffer>
} | {
  readonly id: string
  /** Streaming form, for any size: reads the body (as often as it needs) and yields the new bytes. */
  readonly stream: (body: MetadataBody, info: MetadataInfo) => AsyncIterable<Buffer>
}
