import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { makeRig, sha256Of } from './fetch-helpers.ts'
import type { Rig } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 8 * MiB
const PIECE = 256 * 1024

type Misbehaviour = 'wrong-start' | 'full-200' | 'size-change' | 'etag-change'

interface BadUpstream { url: string, bodiesCut: number, close: () => Promise<void> }

/**
 * Answers the first Range request properly, then every later one wrongly, each with a long body that
 * trickles out (so the engine must drop a body that is still streaming).
 */
async function startBadUpstream (mode: Misbehaviour): Promise<BadUpstream> {
  let requests = 0
  const state = { bodiesCut: 0 }
  const chunk = Buffer.alloc(64 * 1024, 7)
  const trickle = (res: ServerResponse, total: number): void => {
    let sent = 0
    const step = (): void => {
      if (res.destroyed || sent >= total) { if (!res.destroyed) res.end(); return }
      const n = Math.min(chunk.length, total - sent)
      sent += n
      res.write(chunk.subarray(0, n))
      setTimeout(step, 20)
    }
    res.once('close', () => { if (sent < total) state.bodiesCut++ })
    step()
  }
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')
    const start = Number(m?.[1] ?? 0)
    const end = Math.min(SIZE - 1, Number(m?.[2] ?? SIZE - 1))
    const len = end - start + 1
    if (requests === 1 || mode === 'etag-change') {
      const etag = requests === 1 ? '"v1"' : '"v2"'
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${SIZE}`, 'content-length': String(len), etag })
      if (requests === 1) res.end(Buffer.alloc(len, 7))
      else trickle(res, len)
      return
    }
    if (mode === 'full-200') {
      res.writeHead(200, { 'content-length': String(SIZE), etag: '"v1"' })
      trickle(res, SIZE)
    } else if (mode === 'wrong-start') {
      res.writeHead(206, { 'content-range': `bytes ${start + 1}-${end}/${SIZE}`, 'content-length': String(len - 1), etag: '"v1"' })
      trickle(res, len - 1)
    } else {
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${SIZE + 1}`, 'content-length': String(len), etag: '"v1"' })
      trickle(res, len)
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get bodiesCut () { return state.bodiesCut },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

let upstream: BadUpstream | undefined
let rig: Rig | undefined
let uncaught: unknown[] = []
const onUncaught = (err: unknown): void => { uncaught.push(err) }

beforeEach(() => {
  uncaught = []
  process.on('uncaughtException', onUncaught)
})

afterEach(async () => {
  await rig?.close()
  await upstream?.close()
  rig = undefined
  upstream = undefined
  process.off('uncaughtException', onUncaught)
})

describe('responses the engine refuses are dropped without unhandled errors', () => {
  for (const mode of ['wrong-start', 'full-200', 'size-change', 'etag-change'] as const) {
    it(`${mode}: the download fails with ERR_UPSTREAM_PROTOCOL and the process survives`, async () => {
      upstream = await startBadUpstream(mode)
      rig = await makeRig({}, { maxRetries: 2, retryBaseMs: 5 })
      const url = new URL(`${upstream.url}/bad.bin`)
      const h = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: PIECE, concurrency: 4 })
      if (h.kind !== 'blob') throw new Error(`expected a blob, got ${h.kind}`)
      const err = await sha256Of(h.open(0, SIZE)).then(() => null, (e: unknown) => e)
      h.release()
      expect((err as { code?: string } | null)?.code).toBe('ERR_UPSTREAM_PROTOCOL')
      // Give destroyed bodies time to emit whatever they emit.
      await sleep(100)
      expect(upstream.bodiesCut).toBeGreaterThan(0)
      expect(uncaught).toEqual([])
      expect(rig.store.stats().file_count).toBe(0)
    })
  }

  it('stopping while a request looks the cache up: no download starts after the stop', async () => {
    upstream = await startBadUpstream('wrong-start')
    rig = await makeRig()
    const store = rig.store
    const lookup = store.lookup.bind(store)
    let looking = (): void => {}
    const lookingUp = new Promise<void>(resolve => { looking = resolve })
    let proceed = (): void => {}
    const gate = new Promise<void>(resolve => { proceed = resolve })
    store.lookup = async (key) => { looking(); await gate; return await lookup(key) }
    const url = new URL(`${upstream.url}/bad.bin`)
    const acquiring = rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 4 * MiB, concurrency: 1 }).then(() => null, (e: unknown) => e)
    await lookingUp
    await rig.fetcher.stop()
    proceed()
    expect(((await acquiring) as { code?: string } | null)?.code).toBe('ERR_ABORTED')
    expect(rig.fetcher.activeDownloads()).toEqual([])
  })

  it('stopping while the first response waits for disk space leaves no unhandled error', async () => {
    upstream = await startBadUpstream('wrong-start')
    let reserving = (): void => {}
    const reserved = new Promise<void>(resolve => { reserving = resolve })
    // Armed once the store started: its first eviction sweep asks for the free space too.
    let armed = false
    rig = await makeRig({
      freeBytes: async () => {
        if (armed) reserving()
        await sleep(200)
        return 1 << 40
      }
    })
    armed = true
    const url = new URL(`${upstream.url}/bad.bin`)
    const acquiring = rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 4 * MiB, concurrency: 1 }).then(() => null, (e: unknown) => e)
    await reserved
    await rig.fetcher.stop()
    expect(((await acquiring) as { code?: string } | null)?.code).toBe('ERR_ABORTED')
    await sleep(300)
    expect(uncaught).toEqual([])
  })
})
