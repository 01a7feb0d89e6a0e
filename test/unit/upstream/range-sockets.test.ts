import { createHash } from 'node:crypto'
import { createServer } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { createDataCert, pinnedSockets, PinMismatchError } from '../../../node/cluster/data-tls.ts'
import { RangeSockets } from '../../../node/upstream/range-sockets.ts'
import type { VolatileBody } from '../../../node/upstream/volatile-body.ts'

/** A scripted HTTP/1.1 server: `answer` gets each request head and the socket, and writes what it likes. */
interface Scripted {
  url: string
  connections: number
  /** TLS connections that resumed a session. */
  resumed: number
  requests: string[]
  close: () => Promise<void>
}

async function scripted (answer: (head: string, socket: Socket, n: number) => void, tls?: { key: string, cert: string }): Promise<Scripted> {
  const sockets = new Set<Socket>()
  const s: Scripted = { url: '', connections: 0, resumed: 0, requests: [], close: async () => {} }
  const onSocket = (socket: Socket): void => {
    s.connections++
    if ((socket as TLSSocket).isSessionReused?.() === true) s.resumed++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let pending = ''
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1')
      let end
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        const head = pending.slice(0, end)
        pending = pending.slice(end + 4)
        s.requests.push(head)
        answer(head, socket, s.requests.length)
      }
    })
  }
  const server: Server = tls === undefined ? createServer(onSocket) : createTlsServer(tls, onSocket)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  s.url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as AddressInfo).port}`
  s.close = async () => {
    for (const x of sockets) x.destroy()
    await new Promise(resolve => server.close(resolve))
  }
  return s
}

/** Deterministic bytes for [start, end). */
function bytes (start: number, end: number): Buffer {
  const b = Buffer.allocUnsafe(end - start)
  for (let i = 0; i < b.length; i++) b[i] = ((start + i) * 31 + 7) & 0xff
  return b
}

function rangeOf (head: string): [number, number] {
  const m = /range: bytes=(\d+)-(\d+)/i.exec(head)
  if (m === null) throw new Error('no range')
  return [Number(m[1]), Number(m[2]) + 1]
}

/** A 206 for the asked range, written in `pieces` writes. */
function answer206 (head: string, socket: Socket, extraHeaders = ''): void {
  const [start, end] = rangeOf(head)
  socket.write(`HTTP/1.1 206 Partial Content\r\ncontent-range: bytes ${start}-${end - 1}/1000000\r\ncontent-length: ${end - start}\r\n${extraHeaders}\r\n`)
  socket.write(bytes(start, end))
}

/** Reads a volatile body the way the fetch engine does: each chunk consumed before the listener returns. */
async function drain (body: VolatileBody, pauseEvery = 0, pauseBetween = false): Promise<{ sha: string, n: number }> {
  const h = createHash('sha256')
  let n = 0
  let chunks = 0
  await new Promise<void>((resolve, reject) => {
    body.on('data', (chunk: Buffer) => {
      h.update(chunk)
      n += chunk.length
      if (pauseEvery > 0 && ++chunks % pauseEvery === 0) {
        // Paused from outside a listener: bytes still arriving meanwhile must be kept as copies.
        const pause = (): void => {
          body.pause()
          setTimeout(() => body.resume(), 5)
        }
        if (pauseBetween) setImmediate(pause)
        else pause()
      }
    })
    body.once('end', resolve)
    body.once('error', reject)
  })
  return { sha: h.digest('hex'), n }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

const open: Array<{ close: () => unknown }> = []
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close()
})
function track<T extends { close: () => unknown }> (x: T): T { open.push(x); return x }

const accept206 = { accept: (h: { status: number }) => h.status === 206 }

describe('RangeSockets', () => {
  it('reads 206 bodies over one kept-alive connection, skipping informational answers, in any read sizes', async () => {
    const server = track(await scripted((head, socket, n) => {
      if (n === 1) socket.write('HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\n')
      answer206(head, socket, 'x-long: ' + 'a'.repeat(3000) + '\r\n')
    }))
    const sockets = track(new RangeSockets())
    for (const [start, end] of [[0, 3 << 20], [5, 6], [1000, 300_000]] as Array<[number, number]>) {
      const res = await sockets.get(new URL(server.url + '/f'), { range: `bytes=${start}-${end - 1}` }, accept206)
      expect(res.head?.status).toBe(206)
      expect(res.head?.headers['content-range']).toBe(`bytes ${start}-${end - 1}/1000000`)
      const got = await drain(res.body as VolatileBody, 3)
      expect(got).toEqual({ sha: sha(bytes(start, end)), n: end - start })
    }
    expect(server.connections).toBe(1)
    expect(server.requests[0]).toMatch(/^GET \/f HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nrange: bytes=0-3145727\r\nvia: 1\.1 aimirror-[0-9a-f]{12}$/)
  })

  it('keeps the bytes of connections read at the same time apart (they share one read buffer)', async () => {
    const server = track(await scripted((head, socket) => {
      // Written in pieces, so reads of the different connections interleave.
      const [start, end] = rangeOf(head)
      socket.write(`HTTP/1.1 206 Partial Content\r\ncontent-length: ${end - start}\r\n\r\n`)
      const body = bytes(start, end)
      let at = 0
      const step = (): void => {
        if (at >= body.length || socket.destroyed) return
        socket.write(body.subarray(at, at + 40_000), () => setImmediate(step))
        at += 40_000
      }
      step()
    }))
    const sockets = track(new RangeSockets())
    const url = new URL(server.url + '/f')
    const ranges = Array.from({ length: 8 }, (_, i) => [i * 1_000_003, i * 1_000_003 + 700_001] as [number, number])
    const got = await Promise.all(ranges.map(async ([start, end], i) => {
      const res = await sockets.get(url, { range: `bytes=${start}-${end - 1}` }, accept206)
      return await drain(res.body as VolatileBody, i % 3, i % 2 === 0)
    }))
    expect(got).toEqual(ranges.map(([start, end]) => ({ sha: sha(bytes(start, end)), n: end - start })))
    expect(server.connections).toBe(8)
  })

  it('leaves a response it does not read to the caller: another status, a chunked or unframed body, a bad head', async () => {
    const replies = [
      'HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n',
      'HTTP/1.1 206 Partial Content\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      'HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 0-4/5\r\n\r\nhello',
      'HTTP/1.1 206 Partial Content\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello',
      'HTTP/1.1 206 Partial Content\r\nbad header line\r\n\r\nhello',
      'ICY 200 OK\r\n\r\n'
    ]
    const server = track(await scripted((_head, socket, n) => { socket.write(replies[n - 1] as string) }))
    const sockets = track(new RangeSockets())
    const seen: Array<number | null> = []
    for (let i = 0; i < replies.length; i++) {
      const res = await sockets.get(new URL(server.url + '/f'), { range: 'bytes=0-4' }, accept206)
      expect(res.body).toBeNull()
      seen.push(res.head?.status ?? null)
    }
    expect(seen).toEqual([302, 206, 206, 206, null, null])
    // None of those connections is reused: each request had its own.
    expect(server.connections).toBe(replies.length)
    expect(sockets.size).toBe(0)
  })

  it('sends a request again on a new connection when a kept-alive one turns out closed', async () => {
    const server = track(await scripted((head, socket, n) => {
      // The second request arrives on a connection the server is done with: closed without an answer.
      if (n === 2) { socket.destroy(); return }
      answer206(head, socket)
    }))
    const sockets = track(new RangeSockets())
    const url = new URL(server.url + '/f')
    await drain((await sockets.get(url, { range: 'bytes=0-99' }, accept206)).body as VolatileBody)
    const res = await sockets.get(url, { range: 'bytes=100-199' }, accept206)
    expect(await drain(res.body as VolatileBody)).toEqual({ sha: sha(bytes(100, 200)), n: 100 })
    expect(server.connections).toBe(2)
  })

  it('fails the body when the connection breaks mid-way, and does not reuse a connection that sent too much', async () => {
    const server = track(await scripted((head, socket, n) => {
      const [start, end] = rangeOf(head)
      if (n === 1) {
        socket.write(`HTTP/1.1 206 Partial Content\r\ncontent-length: ${end - start}\r\n\r\n`)
        socket.write(bytes(start, start + 10), () => socket.destroy())
        return
      }
      socket.write(`HTTP/1.1 206 Partial Content\r\ncontent-length: ${end - start}\r\n\r\n`)
      socket.write(Buffer.concat([bytes(start, end), Buffer.from('junk')]))
    }))
    const sockets = track(new RangeSockets())
    const url = new URL(server.url + '/f')
    const broken = await sockets.get(url, { range: 'bytes=0-99' }, accept206)
    await expect(drain(broken.body as VolatileBody)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_PROTOCOL' })
    const extra = await sockets.get(url, { range: 'bytes=0-99' }, accept206)
    expect(await drain(extra.body as VolatileBody)).toEqual({ sha: sha(bytes(0, 100)), n: 100 })
    await new Promise(resolve => setImmediate(resolve))
    expect(sockets.size).toBe(0)
  })

  it('names who broke off in its errors: a pool reading from peers says "Peer"', async () => {
    const server = track(await scripted((head, socket) => {
      const [start, end] = rangeOf(head)
      socket.write(`HTTP/1.1 206 Partial Content\r\ncontent-length: ${end - start}\r\n\r\n`)
      socket.write(bytes(start, start + 10), () => socket.end())
    }))
    const url = new URL(server.url + '/f')
    for (const [init, said] of [[{}, 'Upstream closed the connection'], [{ party: 'Peer' }, 'Peer closed the connection']] as const) {
      const sockets = track(new RangeSockets(init))
      const res = await sockets.get(url, { range: 'bytes=0-99' }, accept206)
      await expect(drain(res.body as VolatileBody)).rejects.toThrow(said)
    }
  })

  it('times out a silent upstream and aborts on the signal, mid-head or mid-body', async () => {
    const server = track(await scripted((head, socket, n) => {
      if (n === 1) return // never answers
      const [start, end] = rangeOf(head)
      socket.write(`HTTP/1.1 206 Partial Content\r\ncontent-length: ${end - start}\r\n\r\n`)
      socket.write(bytes(start, start + 10)) // and then nothing
    }))
    const sockets = track(new RangeSockets({ readTimeoutMs: 150 }))
    const url = new URL(server.url + '/f')
    await expect(sockets.get(url, { range: 'bytes=0-99' }, accept206)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_TIMEOUT' })
    const ac = new AbortController()
    const res = await sockets.get(url, { range: 'bytes=0-99' }, { ...accept206, signal: ac.signal })
    const reading = drain(res.body as VolatileBody)
    setTimeout(() => ac.abort(), 20)
    await expect(reading).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(sockets.size).toBe(0)
  })

  it('keeps the bytes that come while nobody reads, and refuses headers that would split the request', async () => {
    const server = track(await scripted((head, socket) => { answer206(head, socket) }))
    const sockets = track(new RangeSockets())
    const url = new URL(server.url + '/f')
    const res = await sockets.get(url, { range: 'bytes=0-199999' }, accept206)
    // The head and a first part of the body are in; nothing reads for a while.
    await new Promise(resolve => setTimeout(resolve, 50))
    expect(await drain(res.body as VolatileBody, 1)).toEqual({ sha: sha(bytes(0, 200_000)), n: 200_000 })
    await expect(sockets.get(url, { range: 'bytes=0-1\r\nx-evil: 1' }, accept206)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_PROTOCOL' })
  })

  it('reads over TLS as well, resuming the session on further connections', async () => {
    const cert = await createDataCert('localhost')
    const server = track(await scripted((head, socket) => { answer206(head, socket) }, cert))
    const sockets = track(new RangeSockets({ tls: { ca: cert.cert, checkServerIdentity: () => undefined } }))
    const url = new URL(server.url + '/f')
    for (const [start, end] of [[0, 1 << 20], [7, 70_007]] as Array<[number, number]>) {
      const res = await sockets.get(url, { range: `bytes=${start}-${end - 1}` }, accept206)
      expect(await drain(res.body as VolatileBody)).toEqual({ sha: sha(bytes(start, end)), n: end - start })
    }
    expect(server.connections).toBe(1)
    // Two at once: the second connection resumes the session the first one got.
    const both = await Promise.all([[0, 100], [100, 200]].map(async ([start, end]) => {
      const res = await sockets.get(url, { range: `bytes=${start as number}-${(end as number) - 1}` }, accept206)
      return await drain(res.body as VolatileBody)
    }))
    expect(both.map(b => b.n)).toEqual([100, 100])
    expect(server.connections).toBe(2)
    expect(server.resumed).toBeGreaterThanOrEqual(1)
  })
  it('with a verifier, a TLS connection carries a request only once its certificate passed (pinning), and resumes no session', async () => {
    const cert = await createDataCert('peer')
    const server = track(await scripted((head, socket) => { answer206(head, socket) }, cert))
    const url = new URL(server.url + '/f')
    const pins = new Map<string, string>()
    const sockets = track(new RangeSockets(pinnedSockets(pins)))
    // No pin for that port, then another certificate's: refused before any request byte went out.
    await expect(sockets.get(url, { range: 'bytes=0-99' }, accept206)).rejects.toBeInstanceOf(PinMismatchError)
    pins.set(`${url.hostname}:${url.port}`, 'ab'.repeat(32))
    await expect(sockets.get(url, { range: 'bytes=0-99', authorization: 'Bearer secret' }, accept206)).rejects.toBeInstanceOf(PinMismatchError)
    expect(server.requests).toEqual([])
    pins.set(`${url.hostname}:${url.port}`, cert.sha256)
    const both = await Promise.all([[0, 100], [100, 200]].map(async ([start, end]) => {
      const res = await sockets.get(url, { range: `bytes=${start as number}-${(end as number) - 1}` }, accept206)
      return await drain(res.body as VolatileBody)
    }))
    expect(both).toEqual([{ sha: sha(bytes(0, 100)), n: 100 }, { sha: sha(bytes(100, 200)), n: 100 }])
    expect(server.requests.length).toBe(2)
    expect(server.resumed).toBe(0)
  })
  it('keeps at most maxPerOrigin connections to an origin: further requests wait for a free one, and a wait can be aborted', async () => {
    let open = 0
    let peak = 0
    const server = track(await scripted((head, socket) => {
      // Each answer a moment later, so requests overlap.
      setTimeout(() => { answer206(head, socket) }, 5)
    }))
    const url = new URL(server.url + '/f')
    const sockets = track(new RangeSockets({ maxPerOrigin: 2 }))
    const got = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const res = await sockets.get(url, { range: `bytes=${i * 100}-${i * 100 + 99}` }, accept206)
      open = sockets.size
      peak = Math.max(peak, open)
      return await drain(res.body as VolatileBody)
    }))
    expect(got.map(g => g.sha)).toEqual(Array.from({ length: 8 }, (_, i) => sha(bytes(i * 100, i * 100 + 100))))
    expect(server.connections).toBe(2)
    expect(peak).toBeLessThanOrEqual(2)
    // Both connections busy: a third request waits, and its abort ends the wait at once.
    const held = await Promise.all([0, 1].map(async () => await sockets.get(url, { range: 'bytes=0-99' }, accept206)))
    const ac = new AbortController()
    const waiting = sockets.get(url, { range: 'bytes=0-99' }, { ...accept206, signal: ac.signal })
    await new Promise(resolve => setTimeout(resolve, 20))
    ac.abort()
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    for (const h of held) await drain(h.body as VolatileBody)
    const after = await sockets.get(url, { range: 'bytes=100-199' }, accept206)
    expect((await drain(after.body as VolatileBody)).sha).toBe(sha(bytes(100, 200)))
    expect(server.connections).toBe(2)
  })
})
