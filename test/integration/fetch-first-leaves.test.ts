import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { send } from '../helpers/client.ts'
import { parseConfig } from '../../config/load.ts'
import { createNode } from '../../node/index.ts'
import type { AimirrorNode } from '../../node/index.ts'

const MiB = 1 << 20
const SIZE = 10 * MiB + 1
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A whole node (its own fetch engine and upstream dispatcher) with one `parallel` rule of default keying. */
describe('a client leaving a download it started', () => {
  let files: FileServer
  let node: AimirrorNode
  let dir: string

  beforeAll(async () => {
    files = await startFileServer({ files: { '/a.bin': { size: SIZE, seed: 12 } }, perConnectionBps: 2 * MiB })
    dir = await mkdtemp(join(tmpdir(), 'aimirror-leave-'))
    node = createNode(parseConfig({
      server: { host: '127.0.0.1', port: 0 },
      cache: { dir, min_free_gb: 0 },
      logging: { level: 'silent' },
      rules: [{ name: 'f', path_prefix: '/f/', strip_prefix: true, upstream: files.url, strategy: 'parallel', min_size: 0, concurrency: 4, chunk_size: MiB }]
    }, { env: {} }))
    await node.start()
  })
  afterAll(async () => {
    await node.stop({ deadlineMs: 2000 })
    await files.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('during its first range does not cut a client that joined it', async () => {
    const url = node.address().url
    const leaving = new AbortController()
    const first = await fetch(url + '/f/a.bin', { signal: leaving.signal })
    const reader = (first.body as ReadableStream<Uint8Array>).getReader()
    const joined = send(url, { path: '/f/a.bin' })
    let got = 0
    while (got < 200_000) {
      const { value, done } = await reader.read()
      if (done) break
      got += value.length
    }
    leaving.abort()
    await reader.cancel().catch(() => {})
    const other = await joined
    expect(other.status).toBe(200)
    expect(sha(other.body)).toBe(generatedSha256(SIZE, 12))
  })
})
