import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generatedSha256 } from '../fixtures/upstreams/file-server-content.ts'
import { startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'

const SIZE = 64 * 1024 * 1024

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Live heap plus Buffer memory after a full GC: garbage is not growth, retained bodies are. */
function retained (): number {
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

describe('proxy memory', () => {
  let files: FileServer
  let node: TestNode
  // The node's GC pacer runs as under the launcher (--expose-gc): relayed bytes are counted.
  let collections = 0
  const globals = globalThis as { gc?: unknown }
  beforeAll(async () => {
    globals.gc = (options: unknown) => { collections++; return (gc as (o: unknown) => void)(options) }
    files = await startFileServer({ files: { '/big.bin': { size: SIZE, seed: 5 }, '/warm.bin': { size: 1024 * 1024 } } })
    node = await startTestNode({ rules: [{ name: 'files', pattern: '.*', upstream: files.url }] })
    delete globals.gc
    // First requests load and compile code; that is not what this test measures.
    for (let i = 0; i < 3; i++) await send(node.url, { path: '/warm.bin' })
  })
  afterAll(async () => {
    await node.stop()
    await files.close()
  })

  it('streams a 64 MiB file with flat memory', async () => {
    const url = new URL(node.url)
    const base = retained()
    let peak = 0
    const samples: number[] = []
    let bytes = 0
    const hash = createHash('sha256')
    const collectionsBefore = collections
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/big.bin', agent: false }, (res) => {
        res.on('data', (c: Buffer) => {
          bytes += c.length
          hash.update(c)
          // Sample every ~4 MiB while the transfer runs.
          if ((bytes & 0x3fffff) < c.length) { const r = retained() - base; samples.push(r); peak = Math.max(peak, r) }
        })
        res.on('end', resolve)
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end()
    })
    expect(bytes).toBe(SIZE)
    expect(hash.digest('hex')).toBe(generatedSha256(SIZE, 5))
    // One young-generation collection per 4 MiB relayed (the pacer's budget); a few may merge.
    expect(collections - collectionsBefore).toBeGreaterThanOrEqual(4)
    // Holding the body would grow with the bytes passed (median ~32 MiB, last ~64 MiB). Streaming stays
    // flat; a single sample may catch a few MiB in flight in socket buffers.
    const sorted = [...samples].sort((a, b) => a - b)
    expect(sorted[Math.floor(sorted.length / 2)]).toBeLessThan(SIZE / 16)
    // A held body would be the whole 64 MiB by the last sample; a quarter leaves room for buffers in flight.
    expect(samples.at(-1)).toBeLessThan(SIZE / 4)
    expect(peak).toBeLessThan(SIZE / 2)
  })
})
