import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { toUpstreamError } from './errors.ts'

/** Header lines as a flat list `[name, value, name, value, ...]`: keeps repeats and their order. */
export type RawHeaders = readonly string[]

export interface UpstreamRequest {
  readonly url: URL
  readonly method: string
  readonly headers: RawHeaders
  /** Streamed upstream with backpressure, or bytes at hand (sent with their length); null for no body. */
  readonly body?: Readable | Buffer | null
  readonly signal?: AbortSignal
}

export interface UpstreamResponse {
  readonly statusCode: number
  /** Response header lines as received (names as sent by upstream). */
  readonly rawHeaders: RawHeaders
  /** Raw bytes, never decoded. Destroy it to abort the upstream request. */
  readonly body: Readable
}

/**
 * One upstream request through the shared dispatcher, with raw bytes both ways (undici.request, not
 * fetch: no transparent decompression) and errors mapped to the catalogue. Body errors that happen
 * later, while streaming, surface on `body`; map them with `toUpstreamError` if they are reported.
 */
export async function requestUpstream (dispatcher: Dispatcher, req: UpstreamRequest): Promise<UpstreamResponse> {
  try {
    const res = await dispatcher.request({
      origin: req.url.origin,
      path: req.url.pathname + req.url.search,
      method: req.method as Dispatcher.HttpMethod,
      headers: [...req.headers],
      body: req.body ?? null,
      signal: req.signal ?? null,
      responseHeaders: 'raw'
    })
    // Whoever consumes the body sees its errors; this listener only keeps an unconsumed or discarded
    // body (upstream reset, abort) from raising an unhandled 'error' that would end the process.
    res.body.on('error', ignore)
    return {
      statusCode: res.statusCode,
      rawHeaders: res.headers as unknown as string[],
      body: res.body
    }
  } catch (err) {
    throw toUpstreamError(err, req.url.origin)
  }
}

function ignore (): void {}

/** Drops a response body without reading it (aborting the upstream request if it is still running). */
export function discardBody (body: Readable): void {
  body.on('error', ignore)
  body.destroy()
}

/**
 * At most `limit` bytes of a (small) body, such as an upstream's refusal to relay; the rest is
 * dropped. A body that breaks off is relayed with what arrived.
 */
export async function readLimited (body: Readable, limit: number): Promise<Buffer> {
  const parts: Buffer[] = []
  let n = 0
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (n + chunk.length > limit) break
      parts.push(chunk)
      n += chunk.length
    }
  } catch {
    // What arrived is still the best answer to relay.
  } finally {
    discardBody(body)
  }
  return Buffer.concat(parts)
}

/** The first `n` bytes of a stream (fewer when it ends first); the rest is not read. Rejects when it breaks. */
export async function readPrefix (body: Readable, n: number): Promise<Buffer> {
  const parts: Buffer[] = []
  let got = 0
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      parts.push(chunk)
      got += chunk.length
      if (got >= n) break
    }
  } finally {
    discardBody(body)
  }
  return Buffer.concat(parts).subarray(0, n)
}

/** All values of header `name` (case-insensitive) in order. */
export function headerValues (raw: RawHeaders, name: string): string[] {
  const out: string[] = []
  const lower = name.toLowerCase()
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === lower) out.push(raw[i + 1] as string)
  }
  return out
}

/** The first value of header `name`, or undefined. */
export function headerValue (raw: RawHeaders, name: string): string | undefined {
  return headerValues(raw, name)[0]
}
