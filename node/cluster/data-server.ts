import type { KeyObject } from 'node:crypto'
import { createServer as createHttpServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { WireErrorCode } from '../../protocol/errors.ts'
import { normaliseIp, readTicket } from '../../protocol/ticket.ts'
import { LIST_MAC_HEADER, listMac, newVouchNonce, responseKey, VOUCH_HEADER, vouchedLength } from '../../protocol/vouch.ts'
import { listen, listenShared } from '../http/acceptors.ts'
import { gateConnections } from '../http/connection-gate.ts'
import type { Acceptors } from '../http/acceptors.ts'
import type { Logger } from '../log.ts'
import type { InFlightBlob } from '../fetch/fetcher.ts'
import { FILE_CHUNK, FileCursor, pooledChunks } from '../fetch/blob-chunks.ts'
import { DOWNLOAD_CHUNK } from '../fetch/download-cursor.ts'
import { BufferPool } from '../fetch/buffer-pool.ts'
import { writeChunks } from '../http/chunk-sender.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { PieceLists } from './piece-lists.ts'
import { vouchingChunks } from './vouching-chunks.ts'

export interface DataServerComponents {
  store: BlobStore
  pieceLists: PieceLists
  /** A download of `sha256:<hex>` still in flight on this node, which members may read along. */
  inFlight?: (key: string) => InFlightBlob | null
  /** Read buffers for blob files, lent to a member's response and given back once written. */
  pool?: BufferPool
  logger: Logger
}

export interface DataServerInit {
  host: string
  port: number
  /** HTTPS with this key and certificate (PEM): members pin the certificate's hash from their tickets. */
  tls?: { key: string, cert: string }
  /** Verifies tickets this node issued. */
  ticketSecret: KeyObject
  /** Keyed clusters: bytes of downloads in flight are vouched for with this key (protocol/vouch.ts). */
  vouchKey?: KeyObject
  onBytesServed?: (n: number) => void
  /** A member reading a download in flight is cut after this long without a new byte (default 5 s). */
  inFlightIdleMs?: number
}

/** Listening sockets on the data port (see listenShared). */
const ACCEPTORS = 8
/**
 * Connections at once: in all, and from one address (a member keeps at most 32 in its pool and 32 for
 * the fetch engine's reads, see Cluster; twice that leaves room for connections still closing).
 */
const CONNECTION_LIMITS = { total: 512, perAddress: 128 }

const BLOB = /^\/v1\/blobs\/([0-9a-f]{64})(\/pieces)?$/
const STATUS: Record<WireErrorCode, number> = {
  BAD_MESSAGE: 400, BAD_TICKET: 401, NOT_MEMBER: 403, WRONG_CLUSTER: 403, NOT_FOUND: 404, BUSY: 503, INTERNAL: 500
}

/**
 * The peer data port: blob bytes over HTTP (or HTTPS) Range, for holders of a ticket this node issued to a
 * member over the authenticated control stream (bound to the blob, the member's address and a short
 * lifetime). Anyone else gets 401 and no byte. Files stream from disk with backpressure.
 */
export class DataServer {
  private readonly store: BlobStore
  private readonly pieceLists: PieceLists
  private readonly inFlight: DataServerComponents['inFlight']
  private readonly pool: BufferPool
  private readonly log: Logger
  private readonly init: DataServerInit
  private server: Server | null = null
  private acceptors: Acceptors | null = null

  constructor (components: DataServerComponents, init: DataServerInit) {
    this.store = components.store
    this.pieceLists = components.pieceLists
    this.inFlight = components.inFlight
    this.pool = components.pool ?? new BufferPool()
    this.log = components.logger
    this.init = init
  }

  get port (): number {
    const a = this.server?.address()
    return a !== null && a !== undefined && typeof a === 'object' ? (a as AddressInfo).port : 0
  }

  async start (): Promise<void> {
    if (this.server !== null) return
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.debug({ err }, 'data port: request failed')
        if (!res.headersSent) this.fail(res, 'INTERNAL')
        else res.destroy()
      })
    }
    // Timeouts are checked every second, not every 30 s (Node's default): a slow-headers flood held
    // 700 connections for up to 40 s past the headers timeout.
    const options = { requestTimeout: 60_000, headersTimeout: 10_000, keepAliveTimeout: 30_000, connectionsCheckingInterval: 1000 }
    const tls = this.init.tls
    const server: Server = tls === undefined ? createHttpServer(options, handler) : createHttpsServer({ ...options, key: tls.key, cert: tls.cert }, handler)
    gateConnections(server, CONNECTION_LIMITS)
    // A member's burst of new connections (every read that was cut needs one) is accepted many per
    // event-loop turn, not one: see listenShared.
    this.acceptors = await listenShared(this.init.host, this.init.port, ACCEPTORS, async options => { await listen(server, options); return server })
    this.server = server
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server === null) return
    this.server = null
    const closed = Promise.all([
      this.acceptors?.close(),
      new Promise<void>(resolve => server.close(() => resolve()))
    ])
    this.acceptors = null
    // Also the connections the extra sockets accepted: each waits for all of its own to end.
    server.closeAllConnections()
    await closed
  }

  private fail (res: ServerResponse, code: WireErrorCode, headers: Record<string, string> = {}): void {
    const body = JSON.stringify({ error: code })
    res.writeHead(STATUS[code], { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers })
    res.end(body)
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A target that is no URL at all (`//[/`) is a bad request like any other that names no blob.
    const m = URL.canParse(req.url ?? '/', 'http://peer') ? BLOB.exec(new URL(req.url ?? '/', 'http://peer').pathname) : null
    if (m === null || (req.method !== 'GET' && req.method !== 'HEAD')) { this.fail(res, 'BAD_MESSAGE'); return }
    const digest = m[1] as string
    const auth = req.headers.authorization
    const claims = auth?.startsWith('Bearer ') === true ? readTicket(this.init.ticketSecret, auth.slice(7).trim(), Date.now()) : null
    const ip = normaliseIp(req.socket.remoteAddress ?? '')
    if (claims === null || claims.digest !== digest || normaliseIp(claims.ip) !== ip) {
      this.fail(res, 'BAD_TICKET', { 'www-authenticate': 'Bearer' })
      return
    }
    if (m[2] !== undefined) { await this.servePieces(digest, req, res); return }
    if (!(await this.store.hasDigest(digest, { forPeer: true }))) { await this.serveInFlight(digest, req, res); return }
    // In use from here, so no eviction takes the file from under the read; one evicted just now is gone.
    const release = this.store.use(digest)
    const size = this.store.blobSize(digest)
    if (size === undefined) { release(); this.fail(res, 'NOT_FOUND'); return }
    const range = parseRange(req.headers.range, size)
    if (range === 'bad') {
      release()
      res.writeHead(416, { 'content-range': `bytes */${size}` })
      res.end()
      return
    }
    const [start, end] = range ?? [0, size]
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'content-length': end - start, 'accept-ranges': 'bytes' }
    if (range !== null) headers['content-range'] = `bytes ${start}-${end - 1}/${size}`
    res.writeHead(range === null ? 200 : 206, headers)
    if (req.method === 'HEAD' || end === start) { release(); res.end(); return }
    const file = new FileCursor(this.store.layout.blobPath(digest), start, end, {
      onClose: (n) => {
        release()
        this.init.onBytesServed?.(n)
      }
    })
    const chunks = pooledChunks(file, this.pool, FILE_CHUNK)
    // The member went away or the file vanished: the socket goes, nothing to tell anyone.
    await writeChunks(res, chunks).catch(() => { res.destroy() })
  }

  /**
   * Range of a blob this node is still downloading, streamed as its bytes land. No piece list exists
   * yet: in a keyed cluster each frame is vouched for when the asker wants it; otherwise the asker
   * verifies the whole blob before it serves any of them. A range nobody here fetches within the idle
   * time is cut, and the asker takes it from elsewhere.
   */
  private async serveInFlight (digest: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const flying = this.inFlight?.(`sha256:${digest}`) ?? null
    if (flying === null) { this.fail(res, 'NOT_FOUND'); return }
    const began = Date.now()
    const range = parseRange(req.headers.range, flying.size)
    if (range === null || range === 'bad') { this.fail(res, 'BAD_MESSAGE'); return }
    const [start, end] = range
    const cursor = req.method === 'HEAD' ? null : flying.cursor(start, end, this.init.inFlightIdleMs ?? 5000)
    if (cursor === null && req.method !== 'HEAD') { this.fail(res, 'NOT_FOUND'); return }
    const key = req.headers[VOUCH_HEADER] === '1' ? this.init.vouchKey : undefined
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'content-length': key === undefined ? end - start : vouchedLength(start, end),
      'content-range': `bytes ${start}-${end - 1}/${flying.size}`,
      'x-aimirror-in-flight': '1'
    }
    const vouch = key === undefined ? null : newVouchNonce()
    if (vouch !== null) headers[VOUCH_HEADER] = vouch.header
    res.writeHead(206, headers)
    if (cursor === null) { res.end(); return }
    // Headers go now, not with the first byte: bytes this node has not fetched yet may take a while,
    // and the asker must not take that wait for a dead peer (its headers timeout drops the peer).
    res.flushHeaders()
    const bytes = pooledChunks(cursor, this.pool, DOWNLOAD_CHUNK)
    const chunks = vouch === null ? bytes : vouchingChunks(bytes, { key: responseKey(key as KeyObject, vouch.nonce), digest, start, end })
    try {
      await writeChunks(res, chunks)
    } catch {
      // Cut (idle, the download failed, or the member left): the socket goes, the member asks elsewhere.
      res.destroy()
    } finally {
      const sent = cursor.bytesRead
      this.init.onBytesServed?.(sent)
      this.log.debug({ digest: digest.slice(0, 12), start, end, sent, ms: Date.now() - began, from: req.socket.remoteAddress }, 'data port: in-flight read done')
    }
  }

  private async servePieces (digest: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const list = await this.pieceLists.get(digest)
    if (list === null) { this.fail(res, 'NOT_FOUND'); return }
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'content-length': list.length }
    if (this.init.vouchKey !== undefined) headers[LIST_MAC_HEADER] = listMac(this.init.vouchKey, digest, list)
    res.writeHead(200, headers)
    res.end(req.method === 'HEAD' ? undefined : list)
  }
}

/** One `bytes=a-b` / `bytes=a-` / `bytes=-n` range as [start, end); null for none; 'bad' if unsatisfiable. */
export function parseRange (header: string | undefined, size: number): [number, number] | null | 'bad' {
  if (header === undefined) return null
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return 'bad'
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0) return 'bad'
    return [Math.max(0, size - n), size]
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1)
  if (start >= size || end <= start) return 'bad'
  return [start, end]
}
