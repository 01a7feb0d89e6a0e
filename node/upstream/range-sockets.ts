import type { ConnectionOptions, TLSSocket } from 'node:tls'
import { AbortedError, UpstreamProtocolError } from '../errors.ts'
import { toUpstreamError } from './errors.ts'
import { Connection } from './range-connection.ts'
import type { ConnectionSettings, RangeSocketsRequest, RangeSocketsResponse } from './range-connection.ts'
import { lruCache } from '../lru.ts'

export type { RangeSocketsRequest, RangeSocketsResponse } from './range-connection.ts'

/**
 * The one read buffer all connections share: each read's bytes are consumed (written, or copied) before
 * the callback returns, and the event loop runs one callback at a time.
 */
const READ_BUFFER = 64 << 10
/** Idle connections kept per origin. */
const MAX_IDLE = 256
/** TLS sessions kept (one per origin), so a download's many connections to a CDN resume instead of a full handshake each. */
const MAX_SESSIONS = 100
const HEADER_SAFE = /^[^\r\n]*$/

export interface RangeSocketsInit {
  connectTimeoutMs?: number
  /** Who answers, as errors name it: `Upstream` (default) or `Peer`. */
  party?: string
  /** Longest silence while waiting for the head or between body bytes. */
  readTimeoutMs?: number
  /** Idle connections close after this long (or sooner if the server's Keep-Alive says so). */
  keepAliveMs?: number
  /**
   * Connections per origin at most (open or opening); further requests wait for one to be free.
   * Unbounded by default (a download's own concurrency bounds its connections).
   */
  maxPerOrigin?: number
  /** Extra TLS options (a private CA in tests). */
  tls?: ConnectionOptions
  /**
   * Checks each TLS connection once its handshake is done, before any request is written on it (a pinned
   * certificate); an error closes it and fails the request. Sessions are not resumed when set.
   */
  verify?: (url: URL, socket: TLSSocket) => Error | null
}

/**
 * GET requests over keep-alive HTTP/1.1 connections that read into one reused buffer, for the
 * fetch engine's range pieces. A general client allocates a fresh buffer for every socket read (about
 * 16 per MiB), which V8 frees only when it collects; here the bytes go from the socket's buffer to the
 * temp file with no allocation, which halves the CPU of receiving and keeps memory flat. Only the plain
 * case is handled (a response framed by Content-Length); anything else is reported back so the caller
 * uses its full HTTP client instead.
 */
export class RangeSockets {
  private readonly idle = new Map<string, Connection[]>()
  private readonly all = new Set<Connection>()
  readonly settings: ConnectionSettings & { maxPerOrigin: number }
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER)
  private readonly sessions = lruCache<string, Buffer>(MAX_SESSIONS)
  /** Connections per origin (open or opening), and the requests waiting for one (maxPerOrigin). */
  private readonly perOrigin = new Map<string, number>()
  private readonly turns = new Map<string, Array<() => void>>()
  private closed = false

  constructor (init: RangeSocketsInit = {}) {
    this.settings = {
      connectTimeoutMs: init.connectTimeoutMs ?? 10_000,
      party: init.party ?? 'Upstream',
      readTimeoutMs: init.readTimeoutMs ?? 30_000,
      keepAliveMs: init.keepAliveMs ?? 30_000,
      maxPerOrigin: init.maxPerOrigin ?? Number.POSITIVE_INFINITY,
      tls: init.tls ?? {},
      verify: init.verify
    }
  }

  /** Open connections (idle or busy). */
  get size (): number {
    return this.all.size
  }

  /**
   * GET `url` with `headers` (lower-case names). A connection kept alive that the server closed
   * meanwhile fails before any byte: the request is sent once more on a new one. Errors are mapped to
   * the catalogue.
   */
  async get (url: URL, headers: Readonly<Record<string, string>>, req: RangeSocketsRequest): Promise<RangeSocketsResponse> {
    for (const [k, v] of Object.entries(headers)) {
      if (!HEADER_SAFE.test(k) || !HEADER_SAFE.test(v)) throw new UpstreamProtocolError('Invalid request header')
    }
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new AbortedError()
      let reused = this.take(url.origin)
      while (reused === null && (this.perOrigin.get(url.origin) ?? 0) >= this.settings.maxPerOrigin) {
        await this.turn(url.origin, req.signal)
        if (this.closed) throw new AbortedError()
        reused = this.take(url.origin)
      }
      const conn = reused ?? this.open(url)
      try {
        return await conn.request(url, headers, req)
      } catch (err) {
        if (reused !== null && !conn.answered && attempt === 0 && req.signal?.aborted !== true) continue
        throw toUpstreamError(err, url.origin)
      }
    }
  }

  close (): void {
    this.closed = true
    for (const c of [...this.all]) c.close()
    for (const list of this.turns.values()) for (const wake of list.splice(0)) wake()
  }

  /** Waits until a connection to `origin` is free or closed (maxPerOrigin). */
  private async turn (origin: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) throw new AbortedError()
    await new Promise<void>((resolve, reject) => {
      let list = this.turns.get(origin)
      if (list === undefined) this.turns.set(origin, list = [])
      const onAbort = (): void => {
        const waiting = this.turns.get(origin)
        const i = waiting?.indexOf(wake) ?? -1
        if (waiting !== undefined && i >= 0) waiting.splice(i, 1)
        reject(new AbortedError())
      }
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      list.push(wake)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private nextTurn (origin: string): void {
    const list = this.turns.get(origin)
    const wake = list?.shift()
    if (list?.length === 0) this.turns.delete(origin)
    wake?.()
  }

  private take (origin: string): Connection | null {
    const list = this.idle.get(origin)
    while (list !== undefined && list.length > 0) {
      const c = list.pop() as Connection
      if (c.state === 'idle') return c
    }
    return null
  }

  private open (url: URL): Connection {
    // Counted before the connection exists: its close (and the decrement) may come at any time after.
    this.perOrigin.set(url.origin, (this.perOrigin.get(url.origin) ?? 0) + 1)
    const conn = new Connection(url, this.settings, this.readBuffer, {
      session: this.settings.verify === undefined ? this.sessions.get(url.origin) : undefined,
      newSession: (session) => { this.sessions.set(url.origin, session) },
      idle: (c) => {
        let list = this.idle.get(c.origin)
        if (list === undefined) this.idle.set(c.origin, list = [])
        if (this.closed || list.length >= MAX_IDLE) c.close()
        else {
          list.push(c)
          this.nextTurn(c.origin)
        }
      },
      closed: (c) => {
        this.all.delete(c)
        const list = this.idle.get(c.origin)
        const i = list?.indexOf(c) ?? -1
        if (list !== undefined && i >= 0) list.splice(i, 1)
        if (list?.length === 0) this.idle.delete(c.origin)
        const n = (this.perOrigin.get(c.origin) ?? 1) - 1
        if (n > 0) this.perOrigin.set(c.origin, n)
        else this.perOrigin.delete(c.origin)
        this.nextTurn(c.origin)
      }
    })
    this.all.add(conn)
    return conn
  }
}

