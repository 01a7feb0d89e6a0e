import { createServer, request } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { BlobChunks } from '../../../node/fetch/blob-chunks.ts'
import { writeChunks } from '../../../node/http/chunk-sender.ts'

/** Chunks of 64 KiB filled with their index; `failAt` throws instead of that chunk; counts what it lent and got back. */
class FakeChunks implements BlobChunks {
  lent = 0
  back = 0
  closed = 0
  private i = 0
  private readonly count: number
  private readonly failAt: number | null

  constructor (count: number, failAt: number | null = null) {
    this.count = count
    this.failAt = failAt
  }

  async next (): Promise<Buffer | null> {
    await new Promise(resolve => setImmediate(resolve))
    if (this.i === this.failAt) throw new Error('source failed')
    if (this.i >= this.count) return null
    this.lent++
    return Buffer.alloc(65536, this.i++)
  }

  recycle (): void { this.back++ }
  close (): void { this.closed++ }
}

let server: Server | null = null
afterEach(async () => {
  await new Promise(resolve => server?.close(resolve) ?? resolve(null))
  server = null
})

async function serve (handler: (res: ServerResponse) => Promise<void>): Promise<string> {
  server = createServer((_req, res) => { void handler(res) })
  await new Promise<void>(resolve => server?.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
}

function get (url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => { request(url, resolve).on('error', reject).end() })
}

describe('writeChunks', () => {
  it('writes every chunk after the head, gives each buffer back, and ends', async () => {
    const chunks = new FakeChunks(40)
    let done = 0
    const url = await serve(async (res) => {
      await writeChunks(res, chunks, { head: () => { res.writeHead(200, { 'content-length': 40 * 65536 }) }, done: () => { done++ } })
    })
    const res = await get(url)
    let n = 0
    let ok = true
    let k = 0
    for await (const c of res as AsyncIterable<Buffer>) {
      for (const b of c) { if (b !== Math.floor(k / 65536)) ok = false; k++ }
      n += c.length
    }
    expect(n).toBe(40 * 65536)
    expect(ok).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 20))
    expect({ lent: chunks.lent, back: chunks.back, closed: chunks.closed, done }).toEqual({ lent: 40, back: 40, closed: 1, done: 1 })
  })

  it('a failure before the first bytes is thrown (the head is not sent); after them the connection is cut', async () => {
    const early = new FakeChunks(10, 0)
    let thrown: unknown = null
    const url = await serve(async (res) => {
      await writeChunks(res, early, { head: () => { res.writeHead(200) } }).catch((err: unknown) => {
        thrown = err
        res.writeHead(502).end('failed')
      })
    })
    const first = await get(url)
    expect(first.statusCode).toBe(502)
    first.resume()
    expect((thrown as Error).message).toBe('source failed')
    expect(early.closed).toBe(1)
    await new Promise(resolve => server?.close(resolve))

    const late = new FakeChunks(10, 5)
    const url2 = await serve(async (res) => {
      await writeChunks(res, late, { head: () => { res.writeHead(200, { 'content-length': 10 * 65536 }) } })
    })
    const second = await get(url2)
    expect(second.statusCode).toBe(200)
    const err = await new Promise<unknown>((resolve) => {
      second.on('data', () => {})
      second.on('end', () => resolve(null))
      second.on('error', resolve)
      second.on('aborted', () => resolve(new Error('aborted')))
    })
    expect(err).not.toBeNull()
  })

  it('a client that leaves stops the reading and lets go of the source', async () => {
    const chunks = new FakeChunks(100_000)
    let done = 0
    const finished = new Promise<void>((resolve) => {
      void serve(async (res) => {
        await writeChunks(res, chunks, { head: () => { res.writeHead(200) }, done: () => { done++ } })
        resolve()
      }).then(async (url) => {
        const res = await get(url)
        res.once('data', () => { res.destroy() })
      })
    })
    await finished
    expect(done).toBe(1)
    expect(chunks.closed).toBe(1)
    expect(chunks.lent).toBeLessThan(1000)
  })
})
