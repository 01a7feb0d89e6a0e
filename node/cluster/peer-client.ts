import type { KeyObject } from 'node:crypto'
import { pipeline, Transform } from 'node:stream'
import type { Readable } from 'node:stream'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Dispatcher } from 'undici'
import { WireError } from '../../protocol/errors.ts'
import { LIMITS } from '../../protocol/ids.ts'
import type { TicketAnswer } from '../../protocol/messages.ts'
import { nameId, wireKey } from '../../protocol/names.ts'
import type { BlobName } from '../../protocol/names.ts'
import { alignedSpan, PIECE_HASH_UNIT, pieceListBytes } from '../../protocol/pieces.ts'
import { LIST_MAC_HEADER, listMacMatches, responseKey, VOUCH_HEADER, vouchNonce } from '../../protocol/vouch.ts'
import type { BufferPool } from '../fetch/buffer-pool.ts'
import type { SourceResponse } from '../fetch/upstream-source.ts'
import type { RangeSockets } from '../upstream/range-sockets.ts'
import type { VolatileBody } from '../upstream/volatile-body.ts'
import type { ControlService } from './control.ts'
import { PinMismatchError } from './data-tls.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'
import { CountedBody, VouchedFrames } from './in-flight-bodies.ts'
import { VerifiedUnits } from './verified-units.ts'
import { VerifyingBody } from './verifying-body.ts'
import { VouchedBody } from './vouched-body.ts'
import { lruCache } from '../lru.ts'

/** Tickets and piece lists kept per peer and blob; the least recently used go first. */
const REMEMBERED = 256

/** A ticket for one blob on one peer, and where to use it. */
export interface PeerTicket extends TicketAnswer {
  readonly peer: string
  /** What it was asked for (a sha256 hex or a key name: protocol/names.ts). */
  readonly name: BlobName
  /** What the peer's data port knows the blob by: its sha256, or the id of a key name still downloading there. */
  readonly digest: string
  /** http(s)://<ip>:<port> of the peer's data port. */
  readonly base: string
}

export interface PeerClientComponents {
  libp2p: ClusterLibp2p
  control: ControlService
  /** Connection pool for the peers' data ports, pinning each port's certificate from `pins`. */
  dispatcher: Dispatcher
  /** "host:port" of a data port → sha256 of its certificate, as its latest ticket said. */
  pins: Map<string, string>
}

export interface PeerClientInit {
  onBytes?: (peer: string, n: number) => void
  /**
   * Plain-HTTP data ports are read over these (no allocation per socket read), for a caller that takes
   * volatile chunks; the 1 MiB units are checked in buffers of `pool`.
   */
  sockets?: { sockets: RangeSockets, pool: BufferPool }
  /** Keyed clusters: piece lists and reads of downloads in flight must be vouched for with this key (protocol/vouch.ts). */
  vouchKey?: KeyObject
}

/**
 * The receiving side of the data plane: tickets over the control protocol (cached until shortly
 * before they expire), piece-hash lists, and verified ranges over HTTP from the address the libp2p
 * connection to the peer uses.
 */
export class PeerClient {
  private readonly c: PeerClientComponents
  private readonly init: PeerClientInit
  private readonly tickets = lruCache<string, Promise<PeerTicket>>(REMEMBERED)
  private readonly lists = lruCache<string, Promise<Buffer>>(REMEMBERED)

  constructor (components: PeerClientComponents, init: PeerClientInit = {}) {
    this.c = components
    this.init = init
  }

  /**
   * Whether what members send is vouched for with the cluster key (a keyed cluster): piece lists and
   * reads of downloads in flight. In an open cluster a holder's list is its own word, and only the whole
   * blob's digest tells whether list and bytes are the blob.
   */
  get vouched (): boolean {
    return this.init.vouchKey !== undefined
  }

  /** A ticket for the blob `name` (a sha256 hex or a key name) on `peer`. */
  async ticket (peer: string, name: BlobName, options: { signal?: AbortSignal } = {}): Promise<PeerTicket> {
    const k = `${peer}/${name}`
    const cached = this.tickets.get(k)
    if (cached !== undefined) {
      const t = await cached.catch(() => null)
      if (t !== null && t.expiresAt - 30_000 > Date.now()) return t
      if (this.tickets.get(k) === cached) this.tickets.delete(k)
    }
    const p = this.requestTicket(peer, name, options.signal)
    this.tickets.set(k, p)
    p.catch(() => { if (this.tickets.get(k) === p) this.tickets.delete(k) })
    return await p
  }

  /** The piece-hash list of a blob as a complete holder serves it (length-checked). */
  async pieceList (t: PeerTicket, options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    // One unit: its hash is the digest we asked for, no need to trust anyone's list.
    if (t.size <= PIECE_HASH_UNIT) return Buffer.from(t.digest, 'hex')
    const k = `${t.peer}/${t.digest}`
    let p = this.lists.get(k)
    if (p === undefined) {
      p = this.fetchList(t, options.signal)
      this.lists.set(k, p)
      p.catch(() => { if (this.lists.get(k) === p) this.lists.delete(k) })
    }
    return await p
  }

  /** A range request that failed: another certificate on that port means the peer restarted (its tickets died with it) or is not the peer. */
  private failedRange (t: PeerTicket, err: unknown): unknown {
    if (err instanceof PinMismatchError) this.forget(t.peer)
    return err
  }

  /** Drops the cached ticket for one blob on one peer (the next one says whether the blob is complete there). */
  forgetTicket (peer: string, name: BlobName): void {
    this.tickets.delete(`${peer}/${name}`)
  }

  forget (peer: string): void {
    for (const k of [...this.tickets.keys()]) if (k.startsWith(`${peer}/`)) this.tickets.delete(k)
    for (const k of [...this.lists.keys()]) if (k.startsWith(`${peer}/`)) this.lists.delete(k)
  }

  /**
   * Bytes [start, end] (inclusive) of a blob from a peer, as a 206 the download can consume: the
   * unit-aligned span around them is fetched and every unit verified before any of its bytes pass.
   */
  async fetchRange (t: PeerTicket, list: Buffer, start: number, end: number, options: { signal?: AbortSignal, onUnit?: (index: number, hash: Buffer) => void, takesVolatile?: boolean } = {}): Promise<SourceResponse> {
    const last = Math.min(end, t.size - 1)
    const span = alignedSpan(start, last + 1, t.size)
    const quick = this.init.sockets
    if (options.takesVolatile === true && quick !== undefined) {
      const { raw, url } = await this.requestRangeOverSockets(quick.sockets, t, span.start, span.end - 1, options.signal)
      const body = new VerifiedUnits(raw, { list, size: t.size, spanStart: span.start, from: start, to: last + 1, onBytes: n => this.init.onBytes?.(t.peer, n), onUnit: options.onUnit }, quick.pool)
      return { ...rangeResponse(t, start, last, body as unknown as Readable, url), volatile: true }
    }
    const { res, url } = await this.requestRange(t, span.start, span.end - 1, options.signal)
    const body = new VerifyingBody({ list, size: t.size, spanStart: span.start, from: start, to: last + 1, onBytes: n => this.init.onBytes?.(t.peer, n), onUnit: options.onUnit })
    pipeline(res.body, body, () => {})
    return rangeResponse(t, start, last, body, url)
  }

  /**
   * Bytes [start, end] (inclusive) of a blob the peer is still downloading, streamed as they land there.
   * In a keyed cluster the peer vouches for every frame and only frames whose tag matched pass.
   * Otherwise nothing can vouch for them yet: the response is marked unverified, and the download holds
   * them back from readers until the whole blob matched its digest.
   */
  async fetchInFlight (t: PeerTicket, start: number, end: number, options: { signal?: AbortSignal, onProgress?: () => void, onUnverified?: (n: number) => void, takesVolatile?: boolean } = {}): Promise<SourceResponse> {
    const last = Math.min(end, t.size - 1)
    const key = this.init.vouchKey
    const quick = this.init.sockets
    if (options.takesVolatile === true && quick !== undefined) {
      const { raw, headers, url } = await this.requestRangeOverSockets(quick.sockets, t, start, last, options.signal, key === undefined ? {} : { [VOUCH_HEADER]: '1' })
      const nonce = key === undefined ? null : vouchNonce(headers[VOUCH_HEADER])
      const onBytes = (n: number): void => { this.init.onBytes?.(t.peer, n) }
      if (key !== undefined && nonce !== null) {
        const body = new VouchedFrames(raw, { key: responseKey(key, nonce), digest: t.digest, start, end: last + 1, onBytes, onProgress: options.onProgress }, quick.pool)
        return { ...rangeResponse(t, start, last, body as unknown as Readable, url), volatile: true }
      }
      const counted = new CountedBody(raw, (n) => { onBytes(n); options.onProgress?.(); options.onUnverified?.(n) })
      return { ...rangeResponse(t, start, last, counted as unknown as Readable, url), volatile: true, unverified: true }
    }
    const { res, url } = await this.requestRange(t, start, last, options.signal, key === undefined ? {} : { [VOUCH_HEADER]: '1' })
    const nonce = key === undefined ? null : vouchNonce(res.headers[VOUCH_HEADER])
    if (key !== undefined && nonce !== null) {
      const body = new VouchedBody({ key: responseKey(key, nonce), digest: t.digest, start, end: last + 1, onBytes: n => this.init.onBytes?.(t.peer, n) })
      res.body.on('data', () => options.onProgress?.())
      pipeline(res.body, body, () => {})
      return rangeResponse(t, start, last, body, url)
    }
    const counted = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.init.onBytes?.(t.peer, chunk.length)
        options.onProgress?.()
        options.onUnverified?.(chunk.length)
        cb(null, chunk)
      }
    })
    pipeline(res.body, counted, () => {})
    return { ...rangeResponse(t, start, last, counted, url), unverified: true }
  }

  /** requestRange over RangeSockets: the exact 206 asked for, or a WireError. */
  private async requestRangeOverSockets (sockets: RangeSockets, t: PeerTicket, start: number, last: number, signal?: AbortSignal, extra: Record<string, string> = {}): Promise<{ raw: VolatileBody, headers: Record<string, string>, url: URL }> {
    const url = new URL(`${t.base}/v1/blobs/${t.digest}`)
    const want = `bytes ${start}-${last}/${t.size}`
    const res = await sockets.get(url, { ...extra, authorization: `Bearer ${t.ticket}`, range: `bytes=${start}-${last}` }, {
      signal,
      accept: head => head.status === 206 && head.headers['content-range'] === want
    }).catch((err: unknown) => { throw this.failedRange(t, err) })
    if (res.body !== null && res.head !== null) return { raw: res.body, headers: res.head.headers, url }
    const status = res.head?.status ?? 0
    if (status === 401) this.tickets.delete(`${t.peer}/${t.name}`)
    throw new WireError(status === 404 ? 'NOT_FOUND' : status === 401 ? 'BAD_TICKET' : 'INTERNAL', `peer answered ${status}`)
  }

  /** GET bytes [start, last] of a blob from the peer's data port: the exact 206 asked for, or a WireError. */
  private async requestRange (t: PeerTicket, start: number, last: number, signal?: AbortSignal, extra: Record<string, string> = {}): Promise<{ res: Dispatcher.ResponseData, url: URL }> {
    const url = new URL(`${t.base}/v1/blobs/${t.digest}`)
    const res = await this.c.dispatcher.request({
      origin: url.origin,
      path: url.pathname,
      method: 'GET',
      headers: { ...extra, authorization: `Bearer ${t.ticket}`, range: `bytes=${start}-${last}` },
      signal,
      headersTimeout: 10_000,
      bodyTimeout: 10_000
    }).catch((err: unknown) => { throw this.failedRange(t, err) })
    if (res.statusCode !== 206 || res.headers['content-range'] !== `bytes ${start}-${last}/${t.size}`) {
      await res.body.dump().catch(() => {})
      if (res.statusCode === 401) this.tickets.delete(`${t.peer}/${t.name}`)
      throw new WireError(res.statusCode === 404 ? 'NOT_FOUND' : res.statusCode === 401 ? 'BAD_TICKET' : 'INTERNAL', `peer answered ${res.statusCode}`)
    }
    return { res, url }
  }

  private async requestTicket (peer: string, name: BlobName, signal?: AbortSignal): Promise<PeerTicket> {
    const answer = await this.c.control.ticket(peer, wireKey(name), { signal })
    const conn = this.c.libp2p.getConnections(peerIdFromString(peer)).find(c => c.status === 'open')
    const ip = conn?.remoteAddr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')
    if (ip?.value === undefined) throw new WireError('INTERNAL', 'no address for the peer')
    const host = ip.name === 'ip6' ? `[${ip.value}]` : ip.value
    const base = new URL(`${answer.cert === undefined ? 'http' : 'https'}://${host}:${answer.port}`)
    if (answer.cert !== undefined) this.c.pins.set(`${base.hostname}:${base.port}`, answer.cert)
    return { ...answer, peer, name, digest: answer.digest ?? nameId(name), base: base.origin }
  }

  private async fetchList (t: PeerTicket, signal?: AbortSignal): Promise<Buffer> {
    const want = pieceListBytes(t.size)
    if (want > LIMITS.maxPieceListBytes) throw new WireError('BAD_MESSAGE', 'piece list too large')
    const url = new URL(`${t.base}/v1/blobs/${t.digest}/pieces`)
    const res = await this.c.dispatcher.request({
      origin: url.origin, path: url.pathname, method: 'GET', headers: { authorization: `Bearer ${t.ticket}` }, signal, headersTimeout: 60_000, bodyTimeout: 10_000
    })
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => {})
      throw new WireError(res.statusCode === 404 ? 'NOT_FOUND' : 'INTERNAL', `peer answered ${res.statusCode}`)
    }
    const parts: Buffer[] = []
    let n = 0
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      n += chunk.length
      if (n > want) { res.body.destroy(); throw new WireError('BAD_MESSAGE', 'piece list too long') }
      parts.push(chunk)
    }
    if (n !== want) throw new WireError('BAD_MESSAGE', 'piece list of the wrong length')
    const list = Buffer.concat(parts)
    const key = this.init.vouchKey
    if (key !== undefined && !listMacMatches(key, t.digest, list, res.headers[LIST_MAC_HEADER])) throw new WireError('BAD_MESSAGE', 'piece list not vouched for')
    return list
  }
}

/** What the download sees of a peer's range: a 206 for exactly [start, last]. */
function rangeResponse (t: PeerTicket, start: number, last: number, body: Readable, url: URL): SourceResponse {
  return {
    status: 206,
    headers: { 'content-range': `bytes ${start}-${last}/${t.size}`, 'content-length': String(last + 1 - start) },
    body: body as unknown as SourceResponse['body'],
    url,
    contentRange: { start, end: last, total: t.size }
  }
}

/** A request to a peer's data port that was answered too late or dropped the connection: slow or busy, not known to be gone. */
export function isSlowPeer (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  // undici's, or RangeSockets' (a timeout, a connection that closed).
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_SOCKET' ||
    code === 'ERR_UPSTREAM_TIMEOUT' || code === 'ERR_UPSTREAM_PROTOCOL'
}
