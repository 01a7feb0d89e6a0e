import type { IncomingMessage, ServerResponse } from 'node:http'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pino } from 'pino'
import { Agent } from 'undici'
import { afterEach } from 'vitest'
import { BlobStore } from '../../node/store/blob-store.ts'
import type { BlobStoreInit } from '../../node/store/blob-store.ts'
import { Fetcher } from '../../node/fetch/fetcher.ts'
import type { FetcherInit } from '../../node/fetch/fetcher.ts'
import { RangeSockets } from '../../node/upstream/range-sockets.ts'
import { AwayOrigins } from '../../node/upstream/away.ts'

export const silent = pino({ level: 'silent' })

export interface Rig {
  dir: string
  store: BlobStore
  fetcher: Fetcher
  agent: Agent
  /** The range connections pieces use (as the node's engine has them), or null. */
  sockets: RangeSockets | null
  /** The upstreams the fetcher takes as away (kept across restarts, as the node's is). */
  away: AwayOrigins
  restart: (fetcherInit?: FetcherInit) => Promise<void>
  close: () => Promise<void>
}

/**
 * A store in a fresh temp dir plus a fetcher over a real undici Agent and, as in the node (unless
 * `sockets: false`), RangeSockets for the pieces.
 */
export async function makeRig (storeInit: Partial<BlobStoreInit> = {}, fetcherInit: FetcherInit = {}, rigInit: { sockets?: boolean } = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-fetch-'))
  const agent = new Agent({ connections: 256, keepAliveTimeout: 5_000 })
  const sockets = rigInit.sockets === false ? null : new RangeSockets({ keepAliveMs: 5_000 })
  const rig: Rig = {
    dir,
    agent,
    sockets,
    away: new AwayOrigins({ logger: silent }),
    store: new BlobStore({ logger: silent }, { dir, maxBytes: 1 << 30, ...storeInit }),
    fetcher: null as unknown as Fetcher,
    async restart (next: FetcherInit = fetcherInit) {
      await rig.fetcher.stop()
      await rig.store.stop()
      rig.store = new BlobStore({ logger: silent }, { dir, maxBytes: 1 << 30, ...storeInit })
      await rig.store.start()
      rig.fetcher = new Fetcher({ store: rig.store, dispatcher: agent, sockets, logger: silent, away: rig.away }, { retryBaseMs: 20, ...next })
    },
    async close () {
      await rig.fetcher.stop()
      await rig.store.stop()
      sockets?.close()
      await agent.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
  await rig.store.start()
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: agent, sockets, logger: silent, away: rig.away }, { retryBaseMs: 20, ...fetcherInit })
  return rig
}

export async function sha256Of (stream: Readable): Promise<{ hex: string, bytes: number }> {
  const h = createHash('sha256')
  let bytes = 0
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    h.update(chunk)
    bytes += chunk.length
  }
  return { hex: h.digest('hex'), bytes }
}

/** Polls `cond` (tests only) until it holds or the deadline passes. */
export async function until (cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/**
 * Registers an afterEach that closes everything handed to the returned function during the test, last
 * opened first (a rig before the server it downloads from).
 */
export function closedAfterEach (): <T extends { close: () => Promise<void> }>(thing: T) => T {
  const open: Array<{ close: () => Promise<void> }> = []
  afterEach(async () => {
    for (const thing of open.splice(0).reverse()) await thing.close()
  })
  return (thing) => {
    open.push(thing)
    return thing
  }
}

/**
 * An upstream request hook that serves only requests with `Authorization: Bearer good` while
 * `state.locked` (401 otherwise), counting every request.
 */
export function credentialGate (state: { locked: boolean, requests: number }) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    state.requests++
    if (!state.locked || req.headers.authorization === 'Bearer good') return false
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' })
    res.end('{"error":"login required"}')
    return true
  }
}
