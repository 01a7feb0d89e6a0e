import { createHash } from 'node:crypto'
import { Transform } from 'node:stream'
import { pino } from 'pino'
import { expect, it } from 'vitest'
import { Fetcher } from '../../node/fetch/fetcher.ts'
import { digestIdentity } from '../../node/fetch/identity.ts'
import type { Source, SourceResponse } from '../../node/fetch/upstream-source.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, until } from './fetch-helpers.ts'

const track = closedAfterEach()

it('an upstream that stalls (headers, some bytes, then nothing, on every request) is said at warn level', async () => {
  const size = 1 << 20
  const server = track(await startFileServer({ files: { '/s.bin': { size, seed: 3 } }, faults: { stallAfterBytes: 50_000 } }))
  const rig = track(await makeRig())
  const lines: Array<{ level: number, msg: string }> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
  await rig.fetcher.stop()
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, sockets: rig.sockets ?? undefined, logger }, { retryBaseMs: 20, bodyTimeoutMs: 300, headersTimeoutMs: 300, maxRetries: 2, quietLimitMs: 10_000 })
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 3) }), { url: new URL(`${server.url}/s.bin`) }, { chunkSize: 0, concurrency: 1 })
  if (got.kind !== 'blob') throw new Error('expected a blob')
  // Each duplicate of a stalled range brings 50 000 bytes more (the pieces' sockets keep their own 30 s
  // read timeout): the download goes on (slowly, never quiet for 10 s), and the warning comes meanwhile.
  const reading = (async () => { for await (const chunk of got.open(0, size)) void chunk })().catch(() => {})
  await until(() => lines.some(l => l.level === 40 && /stalls/.test(l.msg)), 20_000)
  got.release()
  await rig.fetcher.stop()
  await reading
}, 30_000)

/** Marks every response as a peer's download read along, which sends its first bytes, then waits `pauseMs`. */
class SlowReadAlong implements Source {
  readonly name = 'slow-read-along'
  private readonly up: Source
  private readonly pauseMs: number

  constructor (up: Source, pauseMs: number) {
    this.up = up
    this.pauseMs = pauseMs
  }

  async fetch (range: { start: number, end: number } | null, options: { signal?: AbortSignal }): Promise<SourceResponse> {
    const res = await this.up.fetch(range, { signal: options.signal })
    let sent = 0
    const pauseMs = this.pauseMs
    const body = res.body.pipe(new Transform({
      transform (chunk: Buffer, _enc, cb) {
        const first = sent === 0
        sent += chunk.length
        if (first) cb(null, Buffer.from(chunk))
        else setTimeout(() => { cb(null, Buffer.from(chunk)) }, sent > 65536 && sent - chunk.length <= 65536 ? pauseMs : 0)
      }
    }))
    return { ...res, body: body as unknown as SourceResponse['body'], readAlong: true }
  }
}

it('a peer\'s download read along that keeps its reader waiting is no stall to warn about', async () => {
  const size = 1 << 20
  const server = track(await startFileServer({ files: { '/p.bin': { size, seed: 4 } } }))
  const rig = track(await makeRig())
  const lines: Array<{ level: number, msg: string }> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
  await rig.fetcher.stop()
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, sockets: rig.sockets ?? undefined, logger }, { retryBaseMs: 20 })
  rig.fetcher.useSources({ sourceFor: (_id, up) => new SlowReadAlong(up, 4500) })
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 4) }), { url: new URL(`${server.url}/p.bin`) }, { chunkSize: 0, concurrency: 1, minSize: 0 })
  if (got.kind !== 'blob') throw new Error('expected a blob')
  const hash = createHash('sha256')
  for await (const chunk of got.open(0, size)) hash.update(chunk)
  got.release()
  expect(hash.digest('hex')).toBe(generatedSha256(size, 4))
  // Seconds without a byte, and the watchdog duplicated the range meanwhile, but nothing said.
  expect(lines.filter(l => l.level >= 40)).toEqual([])
}, 30_000)
