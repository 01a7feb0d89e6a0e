import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'

export interface Download {
  status: number
  headers: IncomingHttpHeaders
  /** Body bytes received (and hashed). */
  bytes: number
  /** Request start → first body byte (→ headers when there is no body). */
  ttfbMs: number
  totalMs: number
  /** Whole body received as announced. */
  complete: boolean
  /** Why it did not complete ('stopped' when stopAfter was reached). */
  error: string | null
  /** Hex sha256 of what was received, when this call created the hash. */
  sha256: string | null
}

export interface DownloadOptions {
  headers?: Record<string, string>
  /** Continue an existing hash (resume); its digest is then left to the caller. */
  hash?: Hash
  /** Read exactly this many body bytes, then drop the connection. */
  stopAfter?: number
  timeoutMs: number
}

/**
 * One GET on its own connection, hashing the body as it streams. Never rejects: a failure is part of
 * the result, so a scenario can report it.
 */
export async function download (url: string, o: DownloadOptions): Promise<Download> {
  const own = o.hash === undefined
  const hash = o.hash ?? createHash('sha256')
  const t0 = performance.now()
  return await new Promise((resolve) => {
    let status = 0
    let headers: IncomingHttpHeaders = {}
    let bytes = 0
    let ttfbMs = -1
    let done = false
    const finish = (error: string | null): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      req.destroy()
      if (ttfbMs < 0) ttfbMs = performance.now() - t0
      resolve({
        status,
        headers,
        bytes,
        ttfbMs,
        totalMs: performance.now() - t0,
        complete: error === null,
        error,
        sha256: own ? hash.digest('hex') : null
      })
    }
    const timer = setTimeout(() => { finish(`timeout after ${o.timeoutMs} ms`) }, o.timeoutMs)
    const req = request(url, { headers: { 'Accept-Encoding': 'identity', ...o.headers }, agent: false }, (res) => {
      status = res.statusCode ?? 0
      headers = res.headers
      res.on('data', (chunk: Buffer) => {
        if (done) return
        if (ttfbMs < 0) ttfbMs = performance.now() - t0
        const take = o.stopAfter === undefined ? chunk : chunk.subarray(0, o.stopAfter - bytes)
        hash.update(take)
        bytes += take.length
        if (o.stopAfter !== undefined && bytes >= o.stopAfter) finish('stopped')
      })
      res.on('end', () => { finish(null) })
      res.on('error', (err: NodeJS.ErrnoException) => { finish(err.code ?? err.message) })
      res.on('close', () => { finish(res.complete ? null : 'connection closed early') })
    })
    req.on('error', (err: NodeJS.ErrnoException) => { finish(err.code ?? err.message) })
    req.end()
  })
}
