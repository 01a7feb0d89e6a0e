import { request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'

export interface ClientResponse {
  status: number
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  body: Buffer
}

export interface ClientOptions {
  method?: string
  /** Sent verbatim as the request target (no normalisation, unlike fetch/undici). */
  path: string
  /** An object, or a flat [name, value, ...] list to send repeated lines. */
  headers?: OutgoingHttpHeaders | string[]
  body?: Buffer | string | Readable
}

/** A plain node:http request on a fresh connection: raw targets and headers, body collected. */
export function send (baseUrl: string, opts: ClientOptions): Promise<ClientResponse> {
  const url = new URL(baseUrl)
  let headers = opts.headers
  // With a raw list node:http adds no Host of its own.
  if (Array.isArray(headers) && !headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'host')) headers = ['Host', url.host, ...headers]
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: opts.method ?? 'GET',
      path: opts.path,
      headers,
      agent: false
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }))
      res.on('error', reject)
      res.on('aborted', () => reject(new Error('response aborted')))
    })
    req.on('error', reject)
    const body = opts.body
    if (body === undefined) req.end()
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body)
    else body.pipe(req)
  })
}

/** The parsed JSON body. */
export function json (res: ClientResponse): Record<string, unknown> {
  return JSON.parse(res.body.toString('utf8')) as Record<string, unknown>
}
