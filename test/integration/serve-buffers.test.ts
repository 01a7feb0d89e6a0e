import { createHash } from 'node:crypto'
import { request } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { until } from './fetch-helpers.ts'
import { startEngineNode } from './fetch-node.ts'
import type { EngineNode } from './fetch-node.ts'

const MiB = 1 << 20
const SIZE = 24 * MiB + 5

function get (url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, resolve)
    req.on('error', reject)
    req.end()
  })
}

/** Reads a response slowly: a pause after every `pauseEvery` bytes. Resolves with its sha256 and length. */
async function slowRead (res: IncomingMessage, pauseEvery: number): Promise<{ sha: string, n: number }> {
  const h = createHash('sha256')
  let n = 0
  let sincePause = 0
  for await (const chunk of res as AsyncIterable<Buffer>) {
    h.update(chunk)
    n += chunk.length
    sincePause += chunk.length
    if (sincePause >= pauseEvery) {
      sincePause = 0
      await new Promise(resolve => setTimeout(resolve, 2))
    }
  }
  return { sha: h.digest('hex'), n }
}

describe('clients are served from recycled buffers', () => {
  let files: FileServer
  let node: EngineNode

  beforeAll(async () => {
    files = await startFileServer({ files: { '/f/a.bin': { size: SIZE, seed: 3 }, '/f/b.bin': { size: SIZE, seed: 4 } }, perConnectionBps: 16 * MiB })
    node = await startEngineNode({
      rules: [{ name: 'f', path_prefix: '/f/', upstream: files.url, strategy: 'parallel', min_size: 0, concurrency: 4, chunk_size: 1048576 }]
    })
  })
  afterAll(async () => {
    await node.stop()
    await files.close()
  })

  it('a slow client of a download in progress, then of the cached file, takes a handful of buffers for the whole file', async () => {
    const pool = node.engine.fetcher.pool
    const cold = await slowRead(await get(`${node.url}/f/a.bin`), 2 * MiB)
    expect(cold).toEqual({ sha: generatedSha256(SIZE, 3), n: SIZE })
    // 24 MiB went out in 128 KiB reads (about 190 of them): the buffers came back and went out again.
    const afterCold = pool.made
    expect(afterCold).toBeGreaterThan(0)
    expect(afterCold).toBeLessThanOrEqual(8)
    const warm = await slowRead(await get(`${node.url}/f/a.bin`), 4 * MiB)
    expect(warm).toEqual({ sha: generatedSha256(SIZE, 3), n: SIZE })
    expect(pool.made - afterCold).toBeLessThanOrEqual(8)
  })

  it('a client that leaves mid-way lets go of the download, which still completes for the cache', async () => {
    const res = await get(`${node.url}/f/b.bin`)
    await new Promise<void>((resolve) => {
      let n = 0
      res.on('data', (chunk: Buffer) => {
        n += chunk.length
        if (n >= 2 * MiB) { res.destroy(); resolve() }
      })
    })
    await until(() => node.engine.downloads.list().length === 0)
    const again = await slowRead(await get(`${node.url}/f/b.bin`), 8 * MiB)
    expect(again).toEqual({ sha: generatedSha256(SIZE, 4), n: SIZE })
    expect(files.stats.bytesFor('/f/b.bin')).toBeLessThanOrEqual(SIZE + 4 * MiB)
  })
})
