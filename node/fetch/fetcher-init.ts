import type { Dispatcher } from 'undici'
import type { AwayOrigins } from '../upstream/away.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { RangeSockets } from '../upstream/range-sockets.ts'
import type { DownloadInit } from './download-init.ts'
import type { GcFunction } from './gc-pacer.ts'

/** What a Fetcher is made of and with (see Fetcher). */
export interface FetcherComponents {
  store: BlobStore
  /** Upstream connections go through this dispatcher (keep-alive pools, proxy, timeouts). */
  dispatcher: Dispatcher
  /** Lighter connections for range pieces (none behind an upstream proxy: those go through the dispatcher). */
  sockets?: RangeSockets | null
  logger: Logger
  /** Origins that just failed to answer: a URL's last known file is served without asking them again. */
  away?: AwayOrigins
}

export interface FetcherInit {
  /** Global cap on upstream connections; excess waits. */
  maxConcurrentDownloads?: number
  /** A download nobody wants any more still finishes (the cache gains it). */
  finishAbandoned?: boolean
  maxRetries?: number
  retryBaseMs?: number
  headersTimeoutMs?: number
  bodyTimeoutMs?: number
  /**
   * A download whose connections all bring nothing for this long fails (default: twice bodyTimeoutMs).
   * Each connection retries a body that went quiet; nothing arriving on any of them across two of those
   * timeouts is a hung source.
   */
  quietLimitMs?: number
  /** Write downloads synchronously to the page cache until a write blocks (default true). */
  syncWrites?: boolean
  /** Makes a download's temp-file writer (tests simulate a full disk with it). */
  openWriter?: DownloadInit['openWriter']
  /** `globalThis.gc` (Node started with --expose-gc): frees dead I/O buffers between full collections. */
  gc?: GcFunction | null
}
