import { createHash } from 'node:crypto'
import { expect, it } from 'vitest'
import { urlIdentity } from '../../node/fetch/identity.ts'
import type { Source, SourceFetchOptions, SourceResponse } from '../../node/fetch/upstream-source.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, until } from './fetch-helpers.ts'

const track = closedAfterEach()
const MiB = 1 << 20

/** Passes requests on to the upstream, counting fetches and noting when it was told its download ended. */
class Watched implements Source {
  readonly name = 'watched'
  fetches = 0
  fetchesAtFinish: number | null = null
  private readonly up: Source

  constructor (up: Source) {
    this.up = up
  }

  async fetch (range: { start: number, end: number } | null, options: SourceFetchOptions): Promise<SourceResponse> {
    this.fetches++
    return await this.up.fetch(range, { signal: options.signal })
  }

  finished (): void {
    this.fetchesAtFinish ??= this.fetches
  }
}

async function readAll (body: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of body) hash.update(chunk)
  return hash.digest('hex')
}

it('a source hears that its download ended; one handed to a pass-through is not told, it is still read', async () => {
  const size = 4 * MiB + 3
  const server = track(await startFileServer({ files: { '/a.bin': { size, seed: 21 }, '/b.bin': { size, seed: 22 } } }))
  const sources: Watched[] = []
  const rig = track(await makeRig({ maxBytes: 64 * MiB }))
  rig.fetcher.useSources({ sourceFor: (_id, up) => { const w = new Watched(up); sources.push(w); return w } })
  const opts = { chunkSize: MiB, concurrency: 4, minSize: 0 }

  const a = new URL(`${server.url}/a.bin`)
  const cached = await rig.fetcher.acquire(urlIdentity(a), { url: a }, opts)
  if (cached.kind !== 'blob') throw new Error('expected a blob')
  expect(await readAll(cached.open(0, size))).toBe(generatedSha256(size, 21))
  cached.release()
  await until(() => sources[0]?.fetchesAtFinish !== null)
  // Told once its ranges were all fetched.
  expect(sources[0]?.fetchesAtFinish).toBe(sources[0]?.fetches)

  const small = track(await makeRig({ maxBytes: MiB }))
  small.fetcher.useSources({ sourceFor: (_id, up) => { const w = new Watched(up); sources.push(w); return w } })
  const b = new URL(`${server.url}/b.bin`)
  const through = await small.fetcher.acquire(urlIdentity(b), { url: b }, opts)
  if (through.kind !== 'blob') throw new Error('expected a blob')
  expect(through.from).toBe('passthrough')
  expect(await readAll(through.open(0, size))).toBe(generatedSha256(size, 22))
  through.release()
  const passed = sources[1]
  // The pass-through read its ranges through the same source, and nobody said it was over.
  expect(passed?.fetches).toBeGreaterThan(1)
  expect(passed?.fetchesAtFinish).toBeNull()
})
