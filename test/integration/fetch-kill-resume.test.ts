import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { startCliNode } from './cli-node.ts'
import { freePort } from '../fixtures/upstreams/oci-distribution.ts'

const MiB = 1 << 20
const SIZE = 12 * MiB
const PIECE = 256 * 1024
const CONNS = 4

let server: FileServer | undefined
let child: ChildProcess | undefined
let dir = ''

afterEach(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
  child = undefined
  await server?.close()
  server = undefined
  if (dir !== '') await rm(dir, { recursive: true, force: true })
})

/** GET through the node: sha256 and byte count of what arrived, or where it broke. */
async function get (url: string, onBytes: (n: number) => void = () => {}): Promise<{ sha256: string, bytes: number, status: number, error: string | null }> {
  return await new Promise(resolve => {
    const h = createHash('sha256')
    let bytes = 0
    let status = 0
    let settled = false
    const done = (error: string | null): void => {
      if (settled) return
      settled = true
      resolve({ sha256: h.digest('hex'), bytes, status, error })
    }
    request(url, { agent: false }, res => {
      status = res.statusCode ?? 0
      res.on('data', (c: Buffer) => { h.update(c); bytes += c.length; onBytes(bytes) })
      res.on('end', () => { done(null) })
      res.on('error', (err) => { done(err.message) })
      res.on('aborted', () => { done('aborted') })
    }).on('error', (err) => { done(err.message) }).end()
  })
}

/** A node with one `parallel` rule over the file server, in a fresh dir. */
async function configure (fs: FileServer, chunkSize: number): Promise<{ url: string, config: string }> {
  dir = await mkdtemp(join(tmpdir(), 'aimirror-kill-'))
  const port = await freePort()
  const config = join(dir, 'aimirror.yaml')
  await writeFile(config, stringify({
    server: { host: '127.0.0.1', port },
    cache: { dir: join(dir, 'cache'), max_size_gb: 1, min_free_gb: 0 },
    logging: { level: 'warn' },
    cluster: { enabled: false, mdns: false },
    rules: [{ name: 'k', path_prefix: '/files/', upstream: fs.url, strategy: 'parallel', min_size: 1, concurrency: CONNS, chunk_size: chunkSize }]
  }))
  return { url: `http://127.0.0.1:${port}`, config }
}

/** Starts the node, asks for the file and kills it (SIGKILL) once the upstream sent `killAt` bytes. */
async function killMidway (fs: FileServer, url: string, config: string, killAt: number): Promise<void> {
  child = await startCliNode(config, url)
  const killed = child
  const first = await get(`${url}/files/k.bin`, () => {
    if (fs.stats.bytesSent >= killAt && killed.exitCode === null && killed.signalCode === null) killed.kill('SIGKILL')
  })
  expect(first.status).toBe(200)
  if (killed.exitCode === null && killed.signalCode === null) killed.kill('SIGKILL')
  if (killed.exitCode === null && killed.signalCode === null) await once(killed, 'exit')
  expect(killed.signalCode).toBe('SIGKILL')
  expect(first.bytes).toBeLessThan(SIZE)
  expect(fs.stats.bytesSent).toBeLessThan(SIZE)
}

/** Restarts the node and asks again: the whole file, right bytes. */
async function resumeAndCheck (url: string, config: string): Promise<void> {
  child = await startCliNode(config, url)
  const second = await get(`${url}/files/k.bin`)
  expect(second.error).toBeNull()
  expect(second.status).toBe(200)
  expect(second.bytes).toBe(SIZE)
  expect(second.sha256).toBe(generatedSha256(SIZE, 11))
}

describe('kill -9 in the middle of a download', () => {
  it('the restarted node resumes from the pieces on disk: right bytes, no piece fetched twice beyond those in flight', async () => {
    server = await startFileServer({ files: { '/files/k.bin': { size: SIZE, seed: 11 } }, perConnectionBps: 2 * MiB })
    const { url, config } = await configure(server, PIECE)
    await killMidway(server, url, config, SIZE / 3)
    const beforeRestart = server.stats.bytesSent
    await resumeAndCheck(url, config)
    // Pieces that were complete before the kill are not fetched again; only those in flight (and
    // completed but not yet recorded) are.
    expect(server.stats.bytesSent).toBeLessThanOrEqual(SIZE + (CONNS + 2) * PIECE)
    expect(server.stats.bytesSent - beforeRestart).toBeLessThan(SIZE)
  }, 60_000)

  it('pieces still in flight resume from their last recorded byte, not from their start', async () => {
    // One piece as big as the file, shared by the connections: at the kill it is not complete.
    server = await startFileServer({ files: { '/files/k.bin': { size: SIZE, seed: 11 } }, perConnectionBps: 2 * MiB })
    const { url, config } = await configure(server, SIZE)
    await killMidway(server, url, config, SIZE * 5 / 6)
    const beforeRestart = server.stats.bytesSent
    await resumeAndCheck(url, config)
    // Progress is recorded every 4 MiB landed: at least 4 of the ~10 MiB sent were, and none is fetched again.
    expect(server.stats.bytesSent - beforeRestart).toBeLessThanOrEqual(SIZE - 4 * MiB)
  }, 60_000)
})
