import { describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import type { Source, SourceResponse } from '../../node/fetch/upstream-source.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 6 * MiB

/** Passes ranges to the upstream and records how many bodies are open at once. */
class CountingSource implements Source {
  readonly name = 'counting'
  open = 0
  peak = 0
  cap: number
  extra: number
  private readonly up: Source

  constructor (up: Source, cap: number, extra = 0) {
    this.up = up
    this.cap = cap
    this.extra = extra
  }

  async fetch (range: { start: number, end: number } | null, options: { signal?: AbortSignal }): Promise<SourceResponse> {
    const res = await this.up.fetch(range, options)
    this.open++
    this.peak = Math.max(this.peak, this.open)
    res.body.once('close', () => { this.open-- })
    return res
  }

  rangesInFlight (concurrency: number): number { return Math.min(this.cap, concurrency + this.extra) }
}

const track = closedAfterEach()

/**
 * Downloads a fresh file through a CountingSource (the cap and extra it is given) at `concurrency`,
 * and opens it from byte 0. The caller reads the stream and releases the handle.
 */
async function pullThrough (seed: number, source: { cap: number, extra?: number }, opts: { chunkSize: number, concurrency: number }): Promise<{ source: () => CountingSource, stream: NodeJS.ReadableStream, release: () => void }> {
  const server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed } }, perConnectionBps: 2 * MiB }))
  const rig = track(await makeRig())
  let counting: CountingSource | undefined
  rig.fetcher.useSources({ sourceFor: (_id, up) => { counting = new CountingSource(up, source.cap, source.extra); return counting } })
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(SIZE, seed) }), { url: new URL(server.url + '/f.bin') }, opts)
  if (got.kind !== 'blob') throw new Error('expected a blob')
  return { source: () => counting as CountingSource, stream: got.open(0, SIZE), release: () => { got.release() } }
}

async function drain (stream: NodeJS.ReadableStream): Promise<number> {
  let bytes = 0
  for await (const chunk of stream) bytes += (chunk as Buffer).length
  return bytes
}

describe("a source's connection cap", () => {
  it('keeps the ranges in flight within what the source asks for, whatever the concurrency', async () => {
    const pull = await pullThrough(4, { cap: 2 }, { chunkSize: 256 * 1024, concurrency: 8 })
    expect(await drain(pull.stream)).toBe(SIZE)
    pull.release()
    // Two workers, plus at most the short-lived ones a waiting reader or a stall may add.
    expect(pull.source().peak).toBeGreaterThanOrEqual(2)
    expect(pull.source().peak).toBeLessThanOrEqual(4)
  })

  it('keeps the extra ranges a source asks for (peers) in flight beyond the concurrency', async () => {
    const pull = await pullThrough(6, { cap: Number.POSITIVE_INFINITY, extra: 3 }, { chunkSize: 256 * 1024, concurrency: 2 })
    expect(await drain(pull.stream)).toBe(SIZE)
    pull.release()
    // 2 + 3 workers, plus at most the two short-lived ones a waiting reader or a stall may add.
    expect(pull.source().peak).toBeGreaterThanOrEqual(5)
    expect(pull.source().peak).toBeLessThanOrEqual(7)
  })

  it('retires connections when the cap drops mid-download', async () => {
    const pull = await pullThrough(5, { cap: Number.POSITIVE_INFINITY }, { chunkSize: 128 * 1024, concurrency: 8 })
    const { stream } = pull
    let read = 0
    let openAfterDrop: number[] = []
    stream.on('data', (c: Buffer) => {
      read += c.length
      const source = pull.source()
      if (read >= SIZE / 4 && source.cap > 1) source.cap = 1
      if (read >= SIZE / 2) openAfterDrop.push(source.open)
    })
    await new Promise<void>((resolve, reject) => { stream.on('end', resolve); stream.on('error', reject) })
    pull.release()
    expect(read).toBe(SIZE)
    expect(pull.source().peak).toBeGreaterThan(2)
    // Each connection finishes its 128 KiB range and leaves; by half-way one (plus a reader's urgent one) is left.
    openAfterDrop = openAfterDrop.slice(Math.floor(openAfterDrop.length / 2))
    expect(Math.max(...openAfterDrop)).toBeLessThanOrEqual(3)
  })
})
