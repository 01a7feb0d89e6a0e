import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { GeneratedContent, generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of } from './fetch-helpers.ts'

const SIZE = 3 * 1024 * 1024 + 5
const track = closedAfterEach()

/** An upstream whose 206 answers do not say the file's size: `bytes a-b/*` (RFC 9110 allows it) or no Content-Range. */
function oddRanges (totals: 'star' | 'none') {
  const content = new GeneratedContent(SIZE, 60)
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const range = /bytes=(\d+)-(\d+)?/.exec(req.headers.range ?? '')
    const s = range === null ? 0 : Number(range[1])
    const e = range === null ? SIZE - 1 : Math.min(SIZE - 1, range[2] === undefined ? SIZE - 1 : Number(range[2]))
    const headers: Record<string, string> = { 'accept-ranges': 'bytes', 'content-length': String(e - s + 1), etag: '"odd"' }
    if (range !== null && totals === 'star') headers['content-range'] = `bytes ${s}-${e}/*`
    res.writeHead(range === null ? 200 : 206, headers)
    res.end(req.method === 'HEAD' ? undefined : content.read(s, e - s + 1))
    return true
  }
}

describe('an upstream whose range answers do not give the file size', () => {
  for (const totals of ['star', 'none'] as const) {
    it(`${totals === 'star' ? 'Content-Range bytes a-b/*' : '206 without Content-Range'}: the file comes whole in one GET`, async () => {
      const server = track(await startFileServer({ files: {}, onRequest: oddRanges(totals) }))
      const rig = track(await makeRig())
      const url = new URL(server.url + '/odd.bin')
      const a = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4 })
      if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
      expect(a.meta.size).toBe(SIZE)
      expect((await sha256Of(a.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 60))
      a.release()
    }, 20_000)
  }
})

/**
 * An upstream whose range answers name other bytes than they carry: `Content-Range: bytes (a+1000)-…`
 * over the bytes from a. On the first request only, or on every range request (a whole GET is honest).
 */
function shiftedRanges (when: 'first' | 'always') {
  const content = new GeneratedContent(SIZE, 61)
  let requests = 0
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const range = /bytes=(\d+)-(\d+)?/.exec(req.headers.range ?? '')
    requests++
    if (range === null) {
      res.writeHead(200, { 'accept-ranges': 'bytes', 'content-length': String(SIZE), etag: '"shift"' })
      res.end(req.method === 'HEAD' ? undefined : content.read(0, SIZE))
      return true
    }
    const s = Number(range[1])
    const e = Math.min(SIZE - 1, range[2] === undefined ? SIZE - 1 : Number(range[2]))
    const lie = when === 'always' || requests === 1
    const claimed = lie ? Math.min(s + 1000, SIZE - 1) : s
    const claimedEnd = Math.min(SIZE - 1, claimed + (e - s))
    res.writeHead(206, { 'accept-ranges': 'bytes', 'content-length': String(claimedEnd - claimed + 1), 'content-range': `bytes ${claimed}-${claimedEnd}/${SIZE}`, etag: '"shift"' })
    res.end(content.read(s, claimedEnd - claimed + 1))
    return true
  }
}

describe('an upstream whose range answer names other bytes than asked', () => {
  for (const when of ['first', 'always'] as const) {
    for (const keyByFinalUrl of [false, true]) {
      it(`${when === 'first' ? 'on its first answer' : 'on every range'}${keyByFinalUrl ? ', keyed by final URL' : ''}: the right bytes, never the shifted ones`, async () => {
        const server = track(await startFileServer({ files: {}, onRequest: shiftedRanges(when) }))
        const rig = track(await makeRig())
        const url = new URL(server.url + '/shift.bin')
        const a = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4, keyByFinalUrl })
        if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
        expect((await sha256Of(a.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 61))
        a.release()
      }, 20_000)
    }
  }
})

/**
 * A keep-alive upstream whose 206 answers past byte 0 say a Content-Length 1000 bytes short of their
 * Content-Range and then send the range's every byte: the rest lands where the next answer is read.
 * Raw sockets, as a well-behaved HTTP server refuses to write such an answer.
 */
async function startMisframingServer (content: GeneratedContent): Promise<{ url: string, wholeRequests: () => number, close: () => Promise<void> }> {
  let wholeRequests = 0
  const sockets = new Set<Socket>()
  const server = createServer(sock => {
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    sock.on('error', () => {})
    let pending = ''
    sock.on('data', d => {
      pending += d.toString('latin1')
      for (let i = pending.indexOf('\r\n\r\n'); i >= 0; i = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, i)
        pending = pending.slice(i + 4)
        const range = /\r\nrange:\s*bytes=(\d+)-(\d*)/i.exec(head)
        if (range === null) wholeRequests++
        const s = range === null ? 0 : Number(range[1])
        const e = range === null || range[2] === '' ? content.size - 1 : Math.min(Number(range[2]), content.size - 1)
        const body = content.read(s, e - s + 1)
        const length = range !== null && s > 0 ? body.length - 1000 : body.length
        const status = range === null ? '200 OK' : `206 Partial Content\r\nContent-Range: bytes ${s}-${e}/${content.size}`
        sock.write(`HTTP/1.1 ${status}\r\nETag: "misframed"\r\nAccept-Ranges: bytes\r\nContent-Length: ${length}\r\n\r\n`)
        sock.write(body)
      }
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    wholeRequests: () => wholeRequests,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

describe('an upstream whose range answers carry a Content-Length other than their Content-Range', () => {
  it('fails the first download at once, then serves the file whole in one GET', async () => {
    const content = new GeneratedContent(SIZE, 62)
    const server = track(await startMisframingServer(content))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/misframed.bin')
    const began = Date.now()
    const first = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4 })
    if (first.kind !== 'blob') throw new Error(`expected a blob, got ${first.kind}`)
    await expect(sha256Of(first.open(0, SIZE))).rejects.toThrow(/Content-Length other than their Content-Range/)
    first.release()
    // Retried for a minute before, asking for the same few bytes again and again.
    expect(Date.now() - began).toBeLessThan(10_000)
    expect(server.wholeRequests()).toBe(0)
    const again = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4 })
    if (again.kind !== 'blob') throw new Error(`expected a blob, got ${again.kind}`)
    expect((await sha256Of(again.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 62))
    again.release()
    expect(server.wholeRequests()).toBe(1)
  }, 30_000)
})
