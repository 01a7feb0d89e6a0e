import type { Dispatcher } from 'undici'
import { AbortedError, isAimirrorError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import { cacheHit } from './cache-hit.ts'
import { Download } from './download.ts'
import { activeList } from './active-list.ts'
import type { Asking } from './active-list.ts'
import type { DownloadInit } from './download-init.ts'
import { canonicalUrl } from './identity.ts'
import type { BlobIdentity } from './identity.ts'
import { Limiter } from './limiter.ts'
import { passThroughHandle } from './passthrough.ts'
import type { PassingThrough } from './passthrough.ts'
import { ProgressiveReader } from './progressive-reader.ts'
import { FinalKeys } from './final-keys.ts'
import type { RangeSockets } from '../upstream/range-sockets.ts'
import { discardBody, UpstreamSource } from './upstream-source.ts'
import type { SourceResponse } from './upstream-source.ts'
import { BufferPool } from './buffer-pool.ts'
import { BrokenRanges } from './broken-ranges.ts'
import { pooledChunks } from './blob-chunks.ts'
import { DOWNLOAD_CHUNK, DownloadCursor, inFlightView } from './download-cursor.ts'
import { GcPacer } from './gc-pacer.ts'
import { Revalidator } from './revalidate.ts'
import { waitFor } from '../abort.ts'
import { AwayOrigins } from '../upstream/away.ts'
import { credentialOf, hasCredentials } from './acquire-types.ts'
import { AccessGuard } from './access-guard.ts'
import type { Acquired, AcquireOptions, ActiveDownload, BlobHandle, InFlightBlob, SourceProvider, UpstreamRequest } from './acquire-types.ts'
import type { FetcherComponents, FetcherInit } from './fetcher-init.ts'

export type { Acquired, AcquireOptions, ActiveDownload, BlobHandle, InFlightBlob, SourceProvider, UpstreamRequest, UpstreamResponse } from './acquire-types.ts'

export type { FetcherComponents, FetcherInit } from './fetcher-init.ts'

const DEFAULT_CHUNK = 8 << 20

/**
 * Fetch engine entry point: local hit → join an in-flight download → new download, from the upstream
 * and, in a cluster, the members (`useSources`). One download per cache key per instance (single
 * flight).
 */
export class Fetcher {
  /** Downloads' further connections (server.max_concurrent_downloads of them). */
  readonly limiter: Limiter
  /**
   * Downloads at once (server.max_concurrent_downloads): each holds one for its first connection, so a
   * new download never waits behind the further connections of others.
   */
  readonly downloads: Limiter
  private readonly store: BlobStore
  private readonly dispatcher: Dispatcher
  private readonly sockets: RangeSockets | null
  private readonly brokenRanges = new BrokenRanges()
  private readonly log: Logger
  private readonly init: Required<Omit<FetcherInit, 'gc' | 'openWriter'>> & Pick<FetcherInit, 'openWriter'>
  /** Paces young-generation collections by bytes moved; shared with the node's other byte paths. */
  readonly pacer: GcPacer
  /** Read buffers lent to clients' responses and given back once written. */
  readonly pool = new BufferPool()
  private readonly inflight = new Map<string, Download>()
  /** Files passed through uncached, while they stream (for /health). */
  private readonly passing = new Set<PassingThrough>()
  /**
   * Original-URL key → its final key (`known`), while its first request resolves: later callers wait for
   * it, and /health lists it until it is answered (a first request may wait long on a slow upstream).
   */
  private readonly resolving = new Map<string, Asking & { known: Promise<string> }>()
  /** Aborted by stop(): a URL's first request, made before its download exists, ends with it. */
  private halt = new AbortController()
  /** Original-URL key → final key last learnt (a hit within FINAL_KEY_TTL_MS skips upstream). */
  private readonly finalKeys: FinalKeys
  private stopping = false
  private readonly revalidator: Revalidator
  private readonly access: AccessGuard
  private sources: SourceProvider | null = null
  private readonly away: AwayOrigins

  constructor (components: FetcherComponents, init: FetcherInit = {}) {
    this.store = components.store
    this.dispatcher = components.dispatcher
    this.sockets = components.sockets ?? null
    this.away = components.away ?? new AwayOrigins({ logger: components.logger })
    this.log = components.logger.child({ component: 'fetch' })
    this.init = {
      maxConcurrentDownloads: init.maxConcurrentDownloads ?? 100,
      finishAbandoned: init.finishAbandoned ?? true,
      maxRetries: init.maxRetries ?? 5,
      retryBaseMs: init.retryBaseMs ?? 200,
      headersTimeoutMs: init.headersTimeoutMs ?? 30_000,
      bodyTimeoutMs: init.bodyTimeoutMs ?? 30_000,
      quietLimitMs: init.quietLimitMs ?? 2 * (init.bodyTimeoutMs ?? 30_000),
      syncWrites: init.syncWrites ?? true,
      openWriter: init.openWriter
    }
    this.limiter = new Limiter(this.init.maxConcurrentDownloads)
    this.downloads = new Limiter(this.init.maxConcurrentDownloads)
    this.pacer = new GcPacer({ gc: init.gc })
    this.revalidator = new Revalidator({ store: this.store, logger: this.log, source: upstream => this.source(upstream), away: this.away })
    this.access = new AccessGuard(upstream => this.source(upstream), this.store)
    this.finalKeys = new FinalKeys(this.store, this.log)
  }

  async start (): Promise<void> {
    this.stopping = false
    this.halt = new AbortController()
    this.pacer.start()
  }

  /** Stops every download (their progress stays on disk for resume) and waits for them. */
  async stop (): Promise<void> {
    this.stopping = true
    this.halt.abort(new AbortedError('Node is stopping'))
    this.pacer.stop()
    const all = [...this.inflight.values()]
    await Promise.all(all.map(async d => {
      const settled = new Promise<void>(resolve => d.onSettled(resolve))
      d.fail(new AbortedError('Node is stopping'), true)
      await settled
      await d.kept
    }))
  }

  /** Downloads started from now on may take bytes from the provider's sources too (null: upstream only). */
  useSources (provider: SourceProvider | null): void {
    this.sources = provider
  }

  activeDownloads (): ActiveDownload[] {
    return activeList(this.inflight.values(), this.resolving, this.passing)
  }

  /** The download in flight for `key`, once its size is known and its bytes go to a file; else null. */
  inFlight (key: string): InFlightBlob | null {
    const d = this.inflight.get(key)
    return d === undefined ? null : inFlightView(d)
  }

  /** Whether a download of `key` is under way that was asked without a client's credentials (also before its first answer). */
  downloadsShareable (key: string): boolean {
    return this.inflight.get(key)?.shareable === true
  }

  async acquire (identity: BlobIdentity, upstream: UpstreamRequest, options: AcquireOptions = {}): Promise<Acquired> {
    return await this.access.check(identity.key, upstream, await this.acquireAny(identity, upstream, options), options.signal)
  }

  private async acquireAny (identity: BlobIdentity, upstream: UpstreamRequest, options: AcquireOptions): Promise<Acquired> {
    if (this.stopping) throw new AbortedError('Node is stopping')
    if (options.keyByFinalUrl === true && identity.expected === null && identity.key.startsWith('url:')) {
      return await this.acquireByFinalUrl(identity, upstream, options)
    }
    const joined = this.inflight.get(identity.key)
    if (joined !== undefined) return await this.join(joined, upstream, options)
    const hit = await this.servedHit(identity, upstream, options)
    if (hit !== null) return hit
    // (A download of the key started while the cache was looked up is joined there.)
    return await this.download(identity, upstream, options, this.source(upstream))
  }

  private source (upstream: UpstreamRequest): UpstreamSource {
    return new UpstreamSource({ dispatcher: this.dispatcher, sockets: this.sockets, brokenRanges: this.brokenRanges, away: this.away }, {
      url: upstream.url,
      headers: upstream.headers,
      headersTimeoutMs: this.init.headersTimeoutMs,
      bodyTimeoutMs: this.init.bodyTimeoutMs
    })
  }

  /**
   * `keyByFinalUrl`: the first range request (the one a download starts with anyway) learns where
   * the URL leads; the final URL's key then goes through hit → join → download as usual, the new
   * download continuing from that first response. Concurrent callers for the same URL wait for the
   * first one's answer instead of asking upstream themselves.
   */
  private async acquireByFinalUrl (identity: BlobIdentity, upstream: UpstreamRequest, options: AcquireOptions): Promise<Acquired> {
    const plain = { ...options, keyByFinalUrl: false }
    // Where a URL leads may depend on who asks (a sign-in page for others): a request with credentials
    // learns it for itself.
    const known = hasCredentials(upstream) ? undefined : this.finalKeys.fresh(identity.key)
    if (known !== undefined) {
      // Where the URL led a moment ago: join that download or serve that blob without asking again.
      const running = this.inflight.get(known.key)
      if (running !== undefined) return await this.join(running, upstream, options)
      const hit = await this.servedHit({ key: known.key, sha256: null, expected: null }, upstream, options)
      if (hit !== null) return hit
    }
    const origin = upstream.url.origin
    if (this.away.isAway(origin)) {
      // An upstream that just failed to answer is not waited for again when the URL's last file is here.
      const last = await this.lastFinalHit(identity, known, options)
      if (last !== null) return last
    }
    let got: Acquired
    const askedAt = Date.now()
    try {
      got = await this.resolveFinal(identity, upstream, options, plain)
      this.away.answered(origin)
    } catch (err) {
      if (isAimirrorError(err) && err.code === 'ERR_ABORTED') throw err
      this.away.failed(origin, err, askedAt)
      const instead = await this.insteadOfUpstream(identity, upstream, plain, known)
      if (instead === null) throw err
      return instead
    }
    if (got.kind !== 'upstream-response' || got.status < 500) return got
    return await this.insteadOfUpstream(identity, upstream, plain, known) ?? got
  }

  /**
   * The upstream could not say where a URL leads (unreachable, 5xx): what it led to last time (also
   * before a restart) is served from the cache; else, in a cluster, the URL's file from the members
   * that hold it by the URL itself (its first range asked of them, not of the upstream again). Null:
   * neither has it.
   */
  private async insteadOfUpstream (identity: BlobIdentity, upstream: UpstreamRequest, options: AcquireOptions, known: { key: string } | undefined): Promise<Acquired | null> {
    const hit = await this.lastFinalHit(identity, known, options)
    if (hit !== null) return hit
    // (Where peers could not take part, the download would only ask the upstream again.)
    if (this.sources === null || hasCredentials(upstream) || this.sources.shares?.(identity, true) !== true) return null
    try {
      return await this.download(identity, upstream, options, this.source(upstream), undefined, { upstreamDown: true })
    } catch (err) {
      if (isAimirrorError(err) && err.code === 'ERR_ABORTED') throw err
      return null
    }
  }

  /**
   * The cached file the URL led to last (also before a restart), if it is still here, served without
   * asking the upstream (it is away, or failed).
   */
  private async lastFinalHit (identity: BlobIdentity, known: { key: string } | undefined, options: AcquireOptions): Promise<BlobHandle | null> {
    const last = known ?? await this.finalKeys.last(identity.key)
    const hit = last === undefined ? null : await this.hit({ key: last.key, sha256: null, expected: null })
    return hit === null ? null : this.counted(this.revalidator.unconfirmed(hit, options.revalidateAfterMs))
  }

  private async resolveFinal (identity: BlobIdentity, upstream: UpstreamRequest, options: AcquireOptions, plain: AcquireOptions): Promise<Acquired> {
    const pending = hasCredentials(upstream) ? undefined : this.resolving.get(identity.key)
    if (pending !== undefined) {
      const key = await waitFor(pending.known, options.signal).catch(() => null)
      if (key !== null) return await this.acquire({ key, sha256: null, expected: null }, upstream, plain)
    }
    const { promise: resolved, resolve: settle } = Promise.withResolvers<string | null>()
    const known = resolved.then(key => key ?? Promise.reject(new AbortedError('not resolved')))
    known.catch(() => {})
    // Waiting for a slot (server.max_concurrent_downloads), then for the first answer.
    const entry = { known, url: upstream.url.href, startedAt: Date.now(), state: 'queued' as Asking['state'] }
    this.resolving.set(identity.key, entry)
    try {
      const release = await this.downloads.acquire({ signal: options.signal })
      entry.state = 'asking'
      const source = this.source(upstream)
      // With peers as sources, the first range only learns where the URL leads: the rest may come from members.
      const withPeers = this.sources !== null && !hasCredentials(upstream)
      const ask = await this.finalKeys.firstAsk(identity, options, options.chunkSize ?? DEFAULT_CHUNK, withPeers)
      let first: SourceResponse
      try {
        // Not the caller's signal: this response becomes the download's first, which others may join
        // and which goes on when its first caller leaves.
        first = await source.fetch(ask, { signal: this.halt.signal })
      } catch (err) {
        release()
        throw err
      } finally {
        entry.state = 'answered'
      }
      const final: BlobIdentity = { key: 'url:' + canonicalUrl(first.url), sha256: null, expected: null }
      if (first.status < 300 || (first.status === 416 && first.contentRange?.total === 0)) this.finalKeys.remember(identity.key, final.key)
      let joined: Download | BlobHandle | null = this.inflight.get(final.key) ?? await this.hit(final)
      // The answer in hand says whether the cached file is still the one the URL serves.
      if (joined !== null && !(joined instanceof Download) && this.revalidator.judge(final.key, joined, first) === 'changed') {
        joined.release()
        joined = null
      }
      if (joined !== null) {
        discardBody(first.body)
        release()
        settle(final.key)
        return joined instanceof Download ? await this.join(joined, upstream, options) : this.counted(joined)
      }
      const acquired = this.download(final, upstream, plain, source, { response: first, release, ask })
      settle(final.key)
      return await acquired
    } finally {
      settle(null)
      if (this.resolving.get(identity.key) === entry) this.resolving.delete(identity.key)
    }
  }

  private async download (identity: BlobIdentity, upstream: UpstreamRequest, options: AcquireOptions, source: UpstreamSource, first?: DownloadInit['first'], route: { upstreamDown?: boolean } = {}): Promise<Acquired> {
    // A caller that was looking up the cache when stop() ran: stop() did not see its download.
    if (this.stopping) {
      if (first !== undefined) { discardBody(first.response.body); first.release() }
      throw new AbortedError('Node is stopping')
    }
    // Another caller started this key while this one looked it up (the cache, or where its URL leads).
    const running = this.inflight.get(identity.key)
    if (running !== undefined) {
      if (first !== undefined) { discardBody(first.response.body); first.release() }
      return await this.join(running, upstream, options)
    }
    this.store.traffic.miss()
    const shareable = !hasCredentials(upstream)
    const credential = credentialOf(upstream)
    const d = new Download({ store: this.store, limiter: this.limiter, downloads: this.downloads, logger: this.log, pacer: this.pacer }, {
      identity,
      // (A download that began with the caller's first response has that range: the rest may come from peers.)
      source: this.sources?.sourceFor(identity, source, { shareable, started: first !== undefined, etag: first?.response.headers.etag, lastModified: first?.response.headers['last-modified'], upstreamDown: route.upstreamDown }) ?? source,
      shareable,
      credential,
      url: upstream.url.href,
      chunkSize: options.chunkSize ?? DEFAULT_CHUNK,
      concurrency: Math.max(1, options.concurrency ?? 8),
      minSize: options.minSize ?? 0,
      maxSize: options.maxSize ?? null,
      replayHeaders: options.replayHeaders ?? [],
      hint: Math.max(0, options.hint ?? 0),
      maxRetries: this.init.maxRetries,
      retryBaseMs: this.init.retryBaseMs,
      quietLimitMs: this.init.quietLimitMs,
      readTimeoutMs: this.init.bodyTimeoutMs,
      syncWrites: this.init.syncWrites,
      openWriter: this.init.openWriter,
      first
    })
    d.finishAbandoned = this.init.finishAbandoned
    this.inflight.set(identity.key, d)
    d.onSettled(() => {
      if (this.inflight.get(identity.key) === d) this.inflight.delete(identity.key)
      if (!shareable && d.digest !== null && d.meta !== null && !this.stopping) this.access.learnPublic(identity.key, upstream, d.digest, d.meta)
    })
    const unwant = d.want()
    d.start()
    return await this.attach(d, unwant, options.signal, source, true)
  }

  private async join (d: Download, upstream: UpstreamRequest, options: AcquireOptions): Promise<Acquired> {
    this.store.traffic.miss()
    return await this.attach(d, d.want(), options.signal, this.source(upstream), false)
  }

  /** `starter`: the caller whose request began the download (it owns the first response). */
  private async attach (d: Download, unwant: () => void, signal: AbortSignal | undefined, source: UpstreamSource, starter: boolean): Promise<Acquired> {
    let ready
    try {
      ready = await waitFor(d.ready, signal)
    } catch (err) {
      unwant()
      // A first response nobody will read (the download passes it through to its starter only).
      if (starter) d.ready.then(r => { if (r.kind === 'passthrough') discardBody(r.first.body) }, () => {})
      throw err
    }
    if (ready.kind === 'upstream-response') {
      unwant()
      return { kind: 'upstream-response', status: ready.status, headers: ready.headers, body: ready.body }
    }
    if (ready.kind === 'passthrough') {
      unwant()
      // Joiners open their own stream, with their own request's headers (credentials). A download asked
      // without credentials reads the members first (those holding the blob, or vouching for their
      // downloads' bytes), so the office still fetches it from the upstream once.
      return passThroughHandle({
        key: d.key,
        url: d.url,
        meta: ready.meta,
        source: d.shareable ? ready.source : source,
        first: starter ? ready.first : null,
        // Each range's socket reads are fresh buffers, dead once passed on: collected as they pile up.
        onBytes: n => { this.store.traffic.receivedByDownload(n); this.pacer.moved(n) },
        passing: this.passing,
        parallel: ready.parallel,
        expected: ready.expected
      })
    }
    // The handle holds the download's file until it is released: a reader opened after the download
    // finished (and let go of its own reference) still has it.
    let holdsFile = tryRetain(d)
    return {
      kind: 'blob',
      from: 'download',
      meta: ready.meta,
      fetchedFor: d.shareable ? undefined : d.credential,
      open: (start, end) => new ProgressiveReader(d, start, end),
      chunks: (start, end) => pooledChunks(new DownloadCursor(d, start, end), this.pool, DOWNLOAD_CHUNK),
      release: () => {
        if (holdsFile) d.releaseFile()
        holdsFile = false
        unwant()
      }
    }
  }

  /** Whether the cache holds, or is downloading, the blob under this identity's key. */
  async holds (identity: BlobIdentity): Promise<boolean> {
    return this.inflight.has(identity.key) || (await this.store.lookup(identity.key)) !== undefined
  }

  /** The cached copy under `identity` as it may be served now (see Revalidator.served); null: a miss. */
  private async servedHit (identity: BlobIdentity, upstream: UpstreamRequest, options: AcquireOptions): Promise<BlobHandle | null> {
    const hit = await this.revalidator.served(identity, await this.hit(identity), upstream, options.revalidateAfterMs)
    return hit === null ? null : this.counted(hit)
  }

  /** A cached copy about to be served: a hit. */
  private counted (hit: BlobHandle): BlobHandle {
    this.store.traffic.hit()
    return hit
  }

  private async hit (identity: BlobIdentity): Promise<BlobHandle | null> {
    return await cacheHit(this.store, { pacer: this.pacer, pool: this.pool }, identity)
  }
}

function tryRetain (d: Download): boolean {
  try {
    d.retainFile()
    return true
  } catch {
    return false
  }
}
