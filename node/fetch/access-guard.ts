import type { Readable } from 'node:stream'
import type { BlobStore } from '../store/blob-store.ts'
import { readLimited } from '../upstream/request.ts'
import { credentialOf, withoutCredentials } from './acquire-types.ts'
import type { Acquired, UpstreamRequest } from './acquire-types.ts'
import { discardBody } from './upstream-source.ts'
import type { Source, SourceResponse } from './upstream-source.ts'
import type { BlobMeta } from './response-meta.ts'
import { compareWithCached } from './revalidate.ts'
import { lruCache } from '../lru.ts'

/** How long an upstream's yes to a client for a blob fetched with someone else's credentials stands. */
const ALLOWED_MS = 60_000
/** Answers remembered at most (the oldest go first). */
const REMEMBERED = 10_000
const ERROR_BODY_LIMIT = 64 << 10
/** How long the check whether a file fetched with credentials is public may take. */
const PUBLIC_PROBE_MS = 10_000

/**
 * A blob fetched with a client's credentials (a private wheel, tarball or release asset) is content
 * that client was allowed to have, not anyone: another client (anonymous, or with other credentials)
 * is given it from the cache or the download in flight only once the upstream answered a one-byte
 * request of its own with the file; otherwise it gets the upstream's answer (401, 403, 404). The client
 * that fetched it needs no check, also offline. A yes is remembered for a minute.
 */
export class AccessGuard {
  private readonly source: (upstream: UpstreamRequest) => Source
  private readonly store: BlobStore
  private readonly allowed = lruCache<string, true>(REMEMBERED, { ttl: ALLOWED_MS })

  constructor (source: (upstream: UpstreamRequest) => Source, store: BlobStore) {
    this.source = source
    this.store = store
  }

  /**
   * A blob just fetched with a client's credentials (under `key`): known public (see
   * BlobStore.knownPublic), and its key anyone's, when the upstream gives it without them too.
   */
  learnPublic (key: string, upstream: UpstreamRequest, digest: string, file: FileFacts): void {
    this.givenWithoutCredentials(upstream, file, AbortSignal.timeout(PUBLIC_PROBE_MS)).then(async (open) => {
      if (!open) return
      this.store.knownPublic(digest)
      // Its key too (a file named by its URL is then offered by it, and other clients need no check).
      await this.store.shareKey(key)
    }).catch(() => {})
  }

  /**
   * Whether the upstream gives the file of `upstream` (fetched with a client's credentials) to a request
   * without them: then it is anyone's (a public model fetched by a logged-in client), and members may
   * have it. False when the credentials cannot be taken off the request.
   */
  async givenWithoutCredentials (upstream: UpstreamRequest, file: FileFacts, signal?: AbortSignal): Promise<boolean> {
    const bare = withoutCredentials(upstream)
    if (bare === null) return false
    try {
      const res = await this.source(bare).fetch({ start: 0, end: 0 }, { signal })
      discardBody(res.body)
      return sameFile(res, file)
    } catch {
      return false
    }
  }

  async check (key: string, upstream: UpstreamRequest, got: Acquired, signal?: AbortSignal): Promise<Acquired> {
    if (got.kind !== 'blob' || got.fetchedFor === undefined) return got
    const who = credentialOf(upstream) ?? 'anonymous'
    if (who === got.fetchedFor) return got
    const asked = `${key}\n${who}`
    if (this.allowed.has(asked)) return got
    let res
    try {
      res = await this.source(upstream).fetch({ start: 0, end: 0 }, { signal })
    } catch (err) {
      got.release()
      throw err
    }
    if (sameFile(res, got.meta)) {
      discardBody(res.body)
      this.allowed.set(asked, true)
      if (who === 'anonymous') got.onPublic?.()
      return got
    }
    got.release()
    const body = await readLimited(res.body as unknown as Readable, ERROR_BODY_LIMIT).catch(() => Buffer.alloc(0))
    return { kind: 'upstream-response', status: res.status, headers: res.headers, body }
  }
}

/** What a cached file is known by: its size and the upstream's validator. */
export type FileFacts = Pick<BlobMeta, 'size' | 'validator'>

/**
 * Whether an upstream answer to a 1-byte request is the cached file: its size (and ETag or Last-Modified
 * when both sides have one), not just a success. A sign-in page a redirect led to is a refusal (it was
 * taken as a yes, and a private file went to whoever asked).
 */
function sameFile (res: SourceResponse, file: FileFacts): boolean {
  // 416: the file is empty, and the upstream served it.
  if (res.status === 416) return file.size === 0 && res.contentRange?.total === 0
  return compareWithCached(file, res) === 'same'
}
