import { connect as netConnect, isIP } from 'node:net'
import type { Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { ConnectionOptions, TLSSocket } from 'node:tls'
import { AbortedError, UpstreamProtocolError, UpstreamTimeoutError } from '../errors.ts'
import { parseResponseHead } from './response-head.ts'
import type { ResponseHead } from './response-head.ts'
import { VolatileBody } from './volatile-body.ts'
import { OWN_VIA } from './via.ts'

/** Registries and CDNs send long heads (Link, signed Set-Cookie); beyond this is not a response to read here. */
const MAX_HEAD = 64 << 10

export interface RangeSocketsResponse {
  /** null: not a well-formed HTTP/1.x head (the connection was closed). */
  head: ResponseHead | null
  /** null when `accept` refused the head or the body is not framed by Content-Length (the connection was closed). */
  body: VolatileBody | null
}

export interface RangeSocketsRequest {
  signal?: AbortSignal
  /** Whether this head's body is wanted; otherwise the connection is closed without reading it. */
  accept: (head: ResponseHead) => boolean
}

/** What every connection of a RangeSockets pool is opened with. */
export interface ConnectionSettings {
  connectTimeoutMs: number
  party: string
  readTimeoutMs: number
  keepAliveMs: number
  tls: ConnectionOptions
  verify?: (url: URL, socket: TLSSocket) => Error | null
}

export interface PoolHooks {
  /** A TLS session to resume, and where new ones go. */
  session?: Buffer
  newSession: (session: Buffer) => void
  idle: (c: Connection) => void
  closed: (c: Connection) => void
}

interface Waiter {
  resolve: (res: RangeSocketsResponse) => void
  reject: (err: unknown) => void
  accept: (head: ResponseHead) => boolean
}

/** One socket, one request at a time: write the head, read the response head, hand the body over. */
export class Connection {
  state: 'idle' | 'head' | 'body' | 'closed' = 'idle'
  readonly origin: string
  /** Whether the current request got any byte back (a request that got none may be sent again). */
  answered = false
  private readonly socket: Socket
  private readonly settings: ConnectionSettings
  private readonly hooks: PoolHooks
  private head: Buffer | null = null
  private body: VolatileBody | null = null
  private waiter: Waiter | null = null
  private left = 0
  private keepAlive = false
  private idleMs: number
  private connectTimer: NodeJS.Timeout | null
  /** False until a TLS connection passed `settings.verify`; the request head waits in `held` meanwhile. */
  private verified: boolean
  private held: string | null = null
  private signal: AbortSignal | null = null
  private readonly onAbort = (): void => { this.close(new AbortedError()) }

  constructor (url: URL, settings: ConnectionSettings, readBuffer: Buffer, hooks: PoolHooks) {
    this.origin = url.origin
    this.settings = settings
    this.hooks = hooks
    this.idleMs = settings.keepAliveMs
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    const https = url.protocol === 'https:'
    const port = url.port !== '' ? Number(url.port) : https ? 443 : 80
    const onread = { buffer: readBuffer, callback: (n: number, buf: Uint8Array): boolean => this.onRead(n, buf as Buffer) }
    this.socket = https
      ? tlsConnect({ ...settings.tls, host, port, servername: isIP(host) === 0 ? host : undefined, ALPNProtocols: ['http/1.1'], session: hooks.session, onread } as ConnectionOptions)
      : netConnect({ host, port, onread, noDelay: true })
    if (https) this.socket.on('session', (session: Buffer) => { hooks.newSession(session) })
    this.connectTimer = setTimeout(() => { this.close(new UpstreamTimeoutError(`${settings.party} connect timed out`)) }, settings.connectTimeoutMs)
    this.verified = !https || settings.verify === undefined
    this.socket.once(https ? 'secureConnect' : 'connect', () => {
      this.clearConnectTimer()
      if (this.verified) return
      const refused = settings.verify?.(url, this.socket as TLSSocket) ?? null
      if (refused !== null) { this.close(refused); return }
      this.verified = true
      if (this.held !== null) this.socket.write(this.held, 'latin1')
      this.held = null
    })
    this.socket.on('timeout', () => {
      this.close(this.state === 'idle' ? undefined : new UpstreamTimeoutError(`${settings.party} timed out`))
    })
    this.socket.on('error', (err) => { this.close(err) })
    this.socket.on('end', () => { this.close() })
    this.socket.on('close', () => { this.close() })
  }

  request (url: URL, headers: Readonly<Record<string, string>>, req: RangeSocketsRequest): Promise<RangeSocketsResponse> {
    return new Promise<RangeSocketsResponse>((resolve, reject) => {
      if (this.state !== 'idle') { reject(new UpstreamProtocolError(`${this.settings.party} closed the connection`)); return }
      this.waiter = { resolve, reject, accept: req.accept }
      this.state = 'head'
      this.answered = false
      if (req.signal !== undefined) {
        if (req.signal.aborted) { this.close(new AbortedError()); return }
        this.signal = req.signal
        req.signal.addEventListener('abort', this.onAbort, { once: true })
      }
      let text = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`
      for (const [k, v] of Object.entries(headers)) if (k !== 'host') text += `${k}: ${v}\r\n`
      text += `via: ${OWN_VIA}\r\n`
      this.socket.setTimeout(this.settings.readTimeoutMs)
      if (this.verified) this.socket.write(`${text}\r\n`, 'latin1')
      else this.held = `${text}\r\n`
    })
  }

  close (err?: unknown): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.clearConnectTimer()
    this.socket.destroy()
    this.forgetSignal()
    this.hooks.closed(this)
    const reason = err ?? new UpstreamProtocolError(`${this.settings.party} closed the connection`)
    const w = this.waiter
    this.waiter = null
    w?.reject(reason)
    const b = this.body
    this.body = null
    b?.fail(reason instanceof Error ? reason : new UpstreamProtocolError(`${this.settings.party} connection failed`))
  }

  private clearConnectTimer (): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer)
    this.connectTimer = null
  }

  private forgetSignal (): void {
    this.signal?.removeEventListener('abort', this.onAbort)
    this.signal = null
  }

  /** The socket's read callback: `buf` is the reused buffer, `n` bytes of it are new. */
  private onRead (n: number, buf: Buffer): boolean {
    this.answered = true
    if (this.state === 'head') return this.readHead(buf.subarray(0, n))
    if (this.state === 'body') return this.readBody(n, buf)
    // Bytes while idle: the server is out of step with us.
    this.close()
    return false
  }

  private readHead (bytes: Buffer): boolean {
    let head = this.head === null ? Buffer.from(bytes) : Buffer.concat([this.head, bytes])
    for (;;) {
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) {
        if (head.length > MAX_HEAD) { this.refuse(null); return false }
        this.head = head
        return true
      }
      const parsed = parseResponseHead(head.toString('latin1', 0, end))
      const rest = head.subarray(end + 4)
      // Informational answers (103 Early Hints) come before the real one.
      if (parsed !== null && parsed.status >= 100 && parsed.status < 200 && parsed.status !== 101) {
        head = rest
        continue
      }
      this.head = null
      if (parsed === null || parsed.contentLength === null || !(this.waiter as Waiter).accept(parsed)) {
        this.refuse(parsed)
        return false
      }
      return this.startBody(parsed, rest)
    }
  }

  /** A response the caller does not read here: the connection goes, the caller asks elsewhere. */
  private refuse (head: ResponseHead | null): void {
    const w = this.waiter
    this.waiter = null
    this.close()
    w?.resolve({ head, body: null })
  }

  private startBody (head: ResponseHead, rest: Buffer): boolean {
    const body = new VolatileBody({
      resume: () => { if (this.body === body) this.socket.resume() },
      abandon: () => { if (this.body === body) this.close(new AbortedError()) }
    })
    this.body = body
    this.state = 'body'
    this.left = head.contentLength as number
    this.keepAlive = head.keepAlive && rest.length <= this.left
    this.idleMs = keepAliveHint(head.headers['keep-alive'], this.settings.keepAliveMs)
    const first = rest.subarray(0, Math.min(rest.length, this.left))
    body.keep(first)
    this.left -= first.length
    const w = this.waiter as Waiter
    this.waiter = null
    w.resolve({ head, body })
    if (this.left === 0) { this.completeBody(); return true }
    // Nobody reads yet: the consumer's first 'data' listener resumes the socket.
    return false
  }

  private readBody (n: number, buf: Buffer): boolean {
    const body = this.body as VolatileBody
    const take = Math.min(n, this.left)
    this.left -= take
    if (n > take) this.keepAlive = false
    const more = body.deliver(take === buf.length ? buf : buf.subarray(0, take))
    if (this.left === 0 && this.body === body) { this.completeBody(); return true }
    return more
  }

  private completeBody (): void {
    const body = this.body as VolatileBody
    this.body = null
    this.forgetSignal()
    body.finish()
    if (!this.keepAlive || this.idleMs <= 0) { this.close(); return }
    this.state = 'idle'
    this.socket.setTimeout(this.idleMs)
    this.hooks.idle(this)
  }
}

/** The idle time a server's `Keep-Alive: timeout=N` allows, a second short of it to avoid the race. */
function keepAliveHint (value: string | undefined, max: number): number {
  const m = value === undefined ? null : /timeout=(\d+)/i.exec(value)
  if (m === null) return max
  return Math.max(0, Math.min(max, Number(m[1]) * 1000 - 1000))
}
