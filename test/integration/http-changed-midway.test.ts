import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { GeneratedContent, generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { send } from '../helpers/client.ts'
import { startEngineNode } from './fetch-node.ts'
import type { EngineNode } from './fetch-node.ts'

const MiB = 1 << 20
const SIZE = 8 * MiB
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

let files: FileServer
let node: EngineNode

beforeAll(async () => {
  files = await startFileServer({ files: { '/f/latest.bin': { size: SIZE, seed: 1 } }, perConnectionBps: MiB })
  node = await startEngineNode({
    rules: [{ name: 'f', path_prefix: '/f/', upstream: files.url, strategy: 'parallel', min_size: 0, concurrency: 2, chunk_size: MiB }]
  })
})
afterAll(async () => {
  await node.stop()
  await files.close()
})

it('a file replaced upstream mid-download: the client with bytes is cut, one still waiting for its first byte gets the new version', async () => {
  const streaming = send(node.url, { path: '/f/latest.bin' }).then(r => r, (err: unknown) => err as Error)
  await sleep(300)
  // The range this client asks for is fetched for it at once: answered only after the change.
  files.configure({ latencyMs: 1000 })
  const lastMiB = send(node.url, { path: '/f/latest.bin', headers: { range: `bytes=${SIZE - MiB}-` } })
  await sleep(500)
  files.setFile('/f/latest.bin', { size: SIZE, seed: 2 })
  files.configure({ latencyMs: 0 })

  const waited = await lastMiB
  expect(waited.status).toBe(206)
  const fresh = Buffer.concat(await Promise.all([...new GeneratedContent(SIZE, 2).chunks(SIZE - MiB, SIZE - 1, MiB)].map(async c => Buffer.from(await c))))
  expect(waited.body.equals(fresh)).toBe(true)

  // The first client had bytes of the old version: its transfer fails, never completes with the new one's.
  const first = await streaming
  if (!(first instanceof Error)) expect(first.body.length).toBeLessThan(SIZE)

  const after = await send(node.url, { path: '/f/latest.bin' })
  expect(sha(after.body)).toBe(generatedSha256(SIZE, 2))
  expect(after.headers.etag).toBe(waited.headers.etag)
}, 60_000)
