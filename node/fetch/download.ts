import type { FileHandle } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { AbortedError, DigestMismatchError, isAimirrorError, isCacheDiskFailure, UpstreamProtocolError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { PartialEntry } from '../store/index-db.ts'
import type { ByteRanges } from './byte-ranges.ts'
import { GcPacer } from './gc-pacer.ts'
import { digestLabel, hashAlgorithms } from './identity.ts'
import type { ExpectedDigest } from './identity.ts'
import type { Limiter } from './limiter.ts'
import { OrderedHasher } from './ordered-hasher.ts'
import { openPassthrough, passthroughPlan } from './passthrough.ts'
import type { ParallelPassthrough } from './passthrough.ts'
import { autoPieceFor, Scheduler } from './pieces.ts'
import { MIN_STEAL } from './steal-policy.ts'
import { discardBody } from './upstream-source.ts'
import { readLimited } from '../upstream/request.ts'
import { ReaderView } from './reader-view.ts'
import { firstAsk, keepsPartial, resumes } from './temp-file.ts'
import { DownloadFile } from './download-file.ts'
import { DiskPieces } from './disk-pieces.ts'
import { ProgressRecord } from './progress-record.ts'
import { ConnectionPool } from './connection-pool.ts'
import { fetchAssignment, plannableFirst, wholeIfUnversioned } from './range-fetch.ts'
import { UnverifiedRetry } from './unverified-retry.ts'
import type { RangeFetchHost } from './range-fetch.ts'
import type { SourceResponse } from './upstream-source.ts'
import { committedEntry, metaFromResponse } from './response-meta.ts'
import type { BlobMeta } from './response-meta.ts'
import type { DownloadComponents, DownloadInit, ReadyResult } from './download-init.ts'

type State = 'starting' | 'running' | 'verified' | 'done' | 'failed'

const ERROR_BODY_LIMIT = 1 << 20
/** Stalled ranges after which a download says its upstream stalls. */
const STALLS_WARNED = 3

/**
 * One blob's download: the first response learns size/validator/Range support and delivers the
 * first piece; then up to `concurrency` connections fill the temp file at piece offsets, the hash
 * follows in byte order, and readers are woken as bytes land. Final bytes are released to readers
 * only after the digest checks out.
 */
export class Download {
  readonly key: string
  readonly url: string
  readonly ready: Promise<ReadyResult>
  /** Bytes on disk, whoever wrote them. */
  readonly written: ByteRanges
  meta: BlobMeta | null = null
  state: State = 'starting'
  error: Error | null = null
  digest: string | null = null
  receivedBytes = 0
  private lastByteAt = 0
  /** The source went to a pass-through with the first response (the blob is not cached). */
  private sourceHandedOn = false
  readonly startedAt = Date.now()

  /** Counts bytes moved through fresh buffers (socket reads here, file reads in readers). */
  readonly pacer: GcPacer
  private readonly store: BlobStore
  private readonly limiter: Limiter
  private readonly downloads: Limiter
  private readonly log: Logger
  private readonly init: DownloadInit
  private readonly abort = new AbortController()
  /** What readers may take and when they wake (DownloadCursor reads through it). */
  readonly view: ReaderView
  private resolveReady!: (r: ReadyResult) => void
  private rejectReady!: (err: unknown) => void
  /** Set once the blob is to be cached (its file may not be open yet). */
  private file: DownloadFile | null = null
  private readonly disk = new DiskPieces()
  private scheduler: Scheduler | null = null
  private hasher: OrderedHasher | null = null
  /** Peers' unvouched bytes fetched again after a digest mismatch. */
  private readonly retry: UnverifiedRetry
  private rangeSupported = true
  /** How long the first response took (sizes a pass-through's ranges). */
  private firstLatencyMs: number | undefined
  private size: number | null = null
  private reserved = 0
  private wants = 0
  /** The progress entry a restart resumes from. */
  private readonly record: ProgressRecord
  private partialStartedAt = Date.now()
  private readonly rangeHost: RangeFetchHost
  private readonly pool: ConnectionPool
  private readonly settledCallbacks: Array<() => void> = []
  finishAbandoned = true
  /** Ranges found stalled so far (see ConnectionPoolHost.stalled). */
  private stalls = 0
  /** Bytes of the file on disk so far (its reservation's part the disk already holds). */
  private readonly writtenBytes = (): number => this.written.total()
  /** Keeps the key's partial download from eviction while this download may use it. */
  private readonly releasePartial: () => void

  constructor (components: DownloadComponents, init: DownloadInit) {
    this.written = this.disk.written
    this.store = components.store
    this.releasePartial = this.store.holdPartial(init.identity.key)
    this.pacer = components.pacer ?? new GcPacer()
    this.limiter = components.limiter
    this.downloads = components.downloads ?? components.limiter
    this.log = components.logger
    this.record = new ProgressRecord({
      disk: this.disk,
      logger: this.log,
      about: () => this.meta === null ? null : { url: this.url, meta: this.meta, expected: this.init.identity.expected, startedAt: this.partialStartedAt },
      wanted: () => this.state === 'running' || (this.state === 'failed' && keepsPartial(this.error)),
      write: async (entry) => { await this.store.putPartial(this.key, entry) },
      onIdle: () => { this.file?.closeIfIdle() }
    })
    this.init = init
    this.key = init.identity.key
    this.url = init.url
    this.ready = new Promise((resolve, reject) => { this.resolveReady = resolve; this.rejectReady = reject })
    this.ready.catch(() => {})
    this.rangeHost = this.makeRangeHost()
    this.view = new ReaderView({
      written: this.written,
      verified: () => this.verified,
      settled: () => this.settled,
      size: () => this.size,
      // Without Range support a second connection would read the file from its first byte again.
      urgent: (offset, patient) => { if (this.rangeSupported) this.pool.urgent(offset, patient) }
    })
    this.pool = new ConnectionPool({
      limiter: this.limiter,
      signal: this.abort.signal,
      scheduler: () => this.scheduler,
      target: () => this.targetWorkers(),
      wanted: () => this.view.waiters.offsets(),
      running: () => this.state === 'running',
      settled: () => this.settled,
      fetch: async (a, first) => { await fetchAssignment(a, first, this.rangeHost) },
      fail: err => this.fail(err, true),
      lastByteAt: () => this.lastByteAt,
      quietLimitMs: init.quietLimitMs ?? 0,
      stalled: () => {
        // Said once per download where an admin looks: ranges stalling again and again is an upstream
        // that stalls, which the duplicates and retries otherwise hide (the download crawls on).
        if (++this.stalls === STALLS_WARNED) this.log.warn({ key: this.key, source: this.init.source.name, stalls: this.stalls }, 'download stalls: its ranges keep sending nothing for seconds (upstream or peers too slow or hung); duplicated onto new connections')
      },
      drained: () => {
        if (!this.settled && this.hasher !== null && this.size !== null && !this.written.covers(0, this.size)) {
          this.fail(new UpstreamProtocolError('Download stalled with missing bytes'), true)
        }
      }
    })
    this.retry = new UnverifiedRetry({
      key: this.key,
      log: this.log,
      source: init.source,
      view: this.view,
      disk: this.disk,
      record: this.record,
      file: () => this.file?.handle ?? null,
      rangeSupported: () => this.rangeSupported,
      running: () => this.state === 'running',
      stopHashing: () => { this.hasher = null },
      restart: fh => {
        this.hasher = this.makeHasher(fh, false)
        this.hasher.pump()
        this.pool.fill()
      },
      fail: err => this.fail(err, false),
      retainFile: () => this.retainFile(),
      releaseFile: () => { this.releaseFile() }
    })
  }

  /** Asked without a client's credentials (see DownloadInit.shareable). */
  get shareable (): boolean {
    return this.init.shareable === true
  }

  /** Whom it is fetched for when not shareable (a hash naming the credentials). */
  get credential (): string {
    return this.init.credential ?? 'unknown'
  }

  get settled (): boolean {
    return this.state === 'done' || this.state === 'failed'
  }

  get totalSize (): number | null {
    return this.size
  }

  get verified (): boolean {
    return this.state === 'verified' || this.state === 'done'
  }

  onSettled (cb: () => void): void {
    if (this.settled) cb()
    else this.settledCallbacks.push(cb)
  }

  /** Someone (a client, later a peer) wants this blob; the returned function says they no longer do. */
  want (): () => void {
    this.wants++
    let done = false
    return () => {
      if (done) return
      done = true
      this.wants--
      if (this.wants === 0 && !this.settled && !this.finishAbandoned) {
        this.fail(new AbortedError('Download no longer wanted'), true)
      }
    }
  }

  start (): void {
    this.run().catch((err: unknown) => this.fail(err, true))
  }

  retainFile (): FileHandle {
    if (this.file === null) throw new UpstreamProtocolError('Download has no file')
    return this.file.retain()
  }

  releaseFile (): void {
    this.file?.release()
  }

  /**
   * Readers of a download that failed for lack of disk space go on from the upstream, uncached, from
   * where they are (true when the size is known and the upstream takes ranges).
   */
  get passThroughOnFailure (): boolean {
    return this.state === 'failed' && isCacheDiskFailure(this.error) &&
      this.rangeSupported && this.size !== null
  }

  /** The digest the blob must have, when known before its bytes. */
  get expected (): ExpectedDigest | null {
    return this.init.identity.expected
  }

  openUpstream (start: number, end: number): Readable {
    const version = this.meta === null ? null : { validator: this.meta.validator, size: this.meta.size }
    return openPassthrough({ source: this.init.source, onBytes: n => { this.store.traffic.receivedByDownload(n); this.pacer.moved(n) }, version }, null, start, end, this.passthroughPlan())
  }

  /** Passed through over several connections when the upstream takes ranges of a known size. */
  private passthroughPlan (): ParallelPassthrough | null {
    const plan = passthroughPlan(this.rangeSupported && this.size !== null, this.init.concurrency, this.firstLatencyMs, this.init.source.alignment?.())
    return plan === null ? null : { ...plan, outageMs: this.init.quietLimitMs, stallCapMs: this.init.readTimeoutMs, answeredInMs: this.firstLatencyMs }
  }

  /** When a connection fetching towards `offset` last landed bytes (ms since the epoch), or 0. */
  progressTowards (offset: number): number {
    return this.scheduler?.progressTowards(offset) ?? 0
  }

  progress (): { size: number | null, received: number, written: number, connections: number } {
    return { size: this.size, received: this.receivedBytes, written: this.written.total(), connections: this.pool.count }
  }

  private async run (): Promise<void> {
    const pre = this.init.first
    const release = pre?.release ?? await this.downloads.acquire({ signal: this.abort.signal })
    let first: SourceResponse
    let begun = false
    try {
      const partial = await this.store.getPartial(this.key)
      const ask = pre?.ask ?? firstAsk(partial, this.init.chunkSize, this.init.hint)
      first = await plannableFirst(this.init.source, pre?.response ?? await this.init.source.fetch(ask, { signal: this.abort.signal }), ask, this.abort.signal)
      first = await wholeIfUnversioned(this.init.source, first, this.init.identity.expected !== null, this.abort.signal)
      begun = true
      if (!(await this.begin(first, partial))) { release(); return }
    } catch (err) {
      if (!begun && pre !== undefined) discardBody(pre.response.body)
      release()
      throw err
    }
    if (first.status === 416) {
      discardBody(first.body)
      this.pool.startWith(release)
    } else {
      const start = first.contentRange !== null && first.contentRange.start >= 0 ? first.contentRange.start : 0
      const end = !this.rangeSupported ? (this.size ?? Number.POSITIVE_INFINITY) : Math.min(first.contentRange?.end ?? 0, (this.size ?? 1) - 1) + 1
      const a = this.scheduler?.claim(start, end, Date.now()) ?? { id: 0, start, pos: start, end, duplicate: false, duplicated: false, lastProgress: 0, startedAt: 0 }
      this.pool.startWith(release, { a, response: first })
    }
    if (this.rangeSupported) this.pool.fill()
  }

  /** Learns the blob from the first response; false when the result needs no workers. */
  private async begin (first: SourceResponse, partial: PartialEntry | undefined): Promise<boolean> {
    if (first.status !== 200 && first.status !== 206 && !(first.status === 416 && first.contentRange?.total === 0)) {
      const body = await readLimited(first.body, ERROR_BODY_LIMIT)
      this.resolveReady({ kind: 'upstream-response', status: first.status, headers: first.headers, body })
      this.settle('failed')
      return false
    }
    const meta = metaFromResponse(first, this.init.identity, this.init.replayHeaders)
    this.rangeSupported = first.status === 206 || first.status === 416
    this.firstLatencyMs = first.latencyMs
    this.size = meta.size
    this.meta = meta
    const size = meta.size
    const tooBig = size !== null && this.init.maxSize !== null && size > this.init.maxSize
    if (tooBig || (size !== null && !(await this.store.reserve(size, this.writtenBytes)))) return this.passThrough(meta, first)
    this.reserved = size ?? 0
    const resumable = partial !== undefined && this.rangeSupported && resumes(partial, size, meta.validator)
    if (partial !== undefined && !resumable) await this.store.discardPartial(this.key)
    this.file = new DownloadFile({ store: this.store, key: this.key, log: this.log, disk: this.disk, recordIdle: () => !this.record.busy, openWriter: this.init.openWriter, syncWrites: this.init.syncWrites })
    const opened = await this.file.open(resumable ? partial : undefined, size, { ...this.init, maxAutoPiece: this.init.source.maxAutoPiece?.() ?? autoPieceFor(first.latencyMs) })
    if (opened === null) return this.passThrough(meta, first)
    if (opened.resumed && partial !== undefined) {
      this.partialStartedAt = partial.startedAt
      meta.etag = partial.etag
      this.log.info({ key: this.key, pieces: this.disk.done, of: this.disk.plan?.count }, 'resuming download')
    }
    const plan = this.disk.plan
    if (plan !== null) this.scheduler = new Scheduler(plan, this.written, this.targetWorkers(), offset => this.init.source.alignment?.(offset) ?? 1, first.latencyMs ?? 0)
    this.hasher = this.makeHasher(opened.fh, true)
    this.state = 'running'
    if (this.rangeSupported) this.record.save()
    this.resolveReady({ kind: 'download', meta })
    this.hasher.pump()
    if (size === 0) this.onHashAdvance()
    return true
  }

  /** The file goes to its clients uncached: they read on through the source (false: no workers). */
  private passThrough (meta: BlobMeta, first: SourceResponse): false {
    this.sourceHandedOn = true
    this.resolveReady({ kind: 'passthrough', meta, first, parallel: this.passthroughPlan(), source: this.init.source, expected: this.init.identity.expected })
    this.settle('failed')
    return false
  }

  /** The in-order hasher; `inOrder`: the source's list of piece hashes takes the bytes too. */
  private makeHasher (fh: FileHandle, inOrder: boolean): OrderedHasher {
    return new OrderedHasher(fh, this.written, hashAlgorithms(this.init.identity), {
      onAdvance: () => this.onHashAdvance(),
      onError: err => this.fail(err, false),
      also: inOrder ? this.init.source.inOrder : undefined
    })
  }

  private targetWorkers (): number {
    if (!this.rangeSupported || (this.size ?? 0) < this.init.minSize) return 1
    const wanted = this.init.source.rangesInFlight?.(this.init.concurrency) ?? this.init.concurrency
    // More connections than pieces only take parts of slow ranges (see Scheduler.steal): a small file
    // from an upstream that throttles each connection is shared among them too.
    const parts = Math.max(this.disk.plan?.count ?? 1, Math.ceil((this.size ?? 0) / MIN_STEAL))
    return Math.max(1, Math.min(wanted, parts))
  }

  /** What each connection's range fetch reads and reports (built once, in the constructor). */
  private makeRangeHost (): RangeFetchHost {
    return {
      source: this.init.source,
      signal: this.abort.signal,
      writer: () => (this.file as DownloadFile).writer,
      written: this.written,
      maxRetries: this.init.maxRetries,
      retryBaseMs: this.init.retryBaseMs,
      outageMs: this.init.quietLimitMs ?? 0,
      log: this.log,
      key: this.key,
      settled: () => this.settled,
      rangeSupported: () => this.rangeSupported,
      size: () => this.size,
      // A blob with a known digest is checked by it: an ETag that differs between a CDN's edges is no change.
      validator: () => this.init.identity.expected === null ? this.meta?.validator : undefined,
      received: (n, allocated) => {
        this.receivedBytes += n
        this.lastByteAt = Date.now()
        this.store.traffic.receivedByDownload(n)
        // Only buffers allocated per read wait for a collection; a reused one does not.
        if (allocated) this.pacer.moved(n)
      },
      landed: (at, chunk, unverified) => {
        if (unverified) this.view.unverified.add(at, at + chunk.length)
        this.wrote(at, chunk)
      },
      ended: (size) => {
        this.size = size
        if (this.meta !== null) this.meta.size = size
        this.onHashAdvance()
      }
    }
  }

  private wrote (at: number, chunk: Buffer): void {
    const end = at + chunk.length
    const pieceDone = this.disk.add(at, end)
    this.hasher?.wrote(at, chunk)
    if (this.rangeSupported) this.record.landed(pieceDone)
    this.view.waiters.wake(at, end)
  }

  private onHashAdvance (): void {
    if (this.hasher === null || this.state !== 'running' || this.size === null) return
    if (this.hasher.hashedTo < this.size) return
    const digests = this.hasher.digests()
    const sha256 = digests.sha256 as string
    const expected = this.init.identity.expected
    if (expected !== null && digests[expected.algorithm] !== expected.hex) {
      if (this.retry.mismatch()) return
      this.fail(new DigestMismatchError(undefined, { detail: { expected: digestLabel(expected) } }), false)
      return
    }
    this.retry.matched()
    this.digest = sha256
    this.state = 'verified'
    // A list made from bytes that were fetched again is not the blob's: made later by reading it back.
    if (!this.retry.refetched) this.init.source.inOrder?.verified(sha256)
    // Stops stragglers (endgame duplicates), but only after the current event: the body that brought
    // the last byte is ending too, and aborting it now would close a reusable connection.
    setImmediate(() => { this.abort.abort() })
    this.view.waiters.wakeAll()
    this.commit(sha256).catch((err: unknown) => {
      this.log.error({ err, key: this.key }, 'commit failed; blob not cached')
      this.store.discardPartial(this.key).catch(() => {})
    }).finally(() => this.settle('done'))
  }

  private async commit (sha256: string): Promise<void> {
    const entry = committedEntry(this.meta as BlobMeta, sha256, this.size as number, this.init.shareable === true ? null : this.credential)
    await (this.file as DownloadFile).commit(entry)
    this.log.info({ key: this.key, size: this.size, digest: sha256, ms: Date.now() - this.startedAt }, 'download committed')
  }

  /** Fails the download; keepPartial leaves the temp file and bitmap for a later resume. */
  fail (err: unknown, keepPartial: boolean): void {
    if (this.settled || this.state === 'verified') return
    const error = err instanceof Error ? err : new UpstreamProtocolError(String(err))
    this.error = error
    this.state = 'failed'
    this.abort.abort(error)
    this.rejectReady(error)
    const resumable = keepPartial && this.rangeSupported && this.disk.plan !== null && keepsPartial(error)
    if (!resumable && this.file !== null) this.store.discardPartial(this.key).catch(() => {})
    else if (resumable) this.record.keep(this.file)
    if (!isAimirrorError(error) || error.code !== 'ERR_ABORTED') this.log.warn({ key: this.key, err: error.message, code: (error as { code?: string }).code }, 'download failed')
    this.settle('failed')
  }

  /** Resolves once a download that stopped to resume later has written its progress entry. */
  get kept (): Promise<void> {
    return this.record.written
  }

  private settle (state: 'done' | 'failed'): void {
    this.state = state
    this.pool.stop()
    // A pass-through reads on through the source after the download ended.
    if (!this.sourceHandedOn) this.init.source.finished?.()
    this.store.unreserve(this.reserved, this.writtenBytes)
    this.reserved = 0
    this.view.waiters.wakeAll()
    // The download's own reference to its file (readers hold theirs).
    this.file?.release()
    // A partial kept for a resume becomes evictable once its entry is written.
    this.record.written.then(this.releasePartial, this.releasePartial)
    for (const cb of this.settledCallbacks.splice(0)) cb()
  }

  /** The pieces on disk now, as the partial entry will record them. */
  pieces (): { pieceSize: number, bitmap: string } | null {
    return this.disk.pieces()
  }
}
