import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import type { InOrderSink, Source, SourceResponse } from '../../node/fetch/upstream-source.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, sha256Of } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 5 * MiB + 333

/** Passes ranges to the upstream and takes the download's bytes in order. */
class InOrderSource implements Source {
  readonly name = 'in-order'
  readonly hash = createHash('sha256')
  bytes = 0
  verifiedAs: string | null = null
  committedWhenVerified: boolean | null = null
  readonly inOrder: InOrderSink
  private readonly up: Source

  constructor (up: Source, committed: () => boolean) {
    this.up = up
    this.inOrder = {
      update: (chunk) => { this.hash.update(chunk); this.bytes += chunk.length },
      verified: (sha256) => { this.verifiedAs = sha256; this.committedWhenVerified = committed() }
    }
  }

  async fetch (range: { start: number, end: number } | null, options: { signal?: AbortSignal }): Promise<SourceResponse> {
    return await this.up.fetch(range, options)
  }
}

const track = closedAfterEach()

describe("a source's in-order sink", () => {
  it('sees every byte once, in order, and hears the digest before the commit', async () => {
    const server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 9 } }, perConnectionBps: 4 * MiB }))
    const rig = track(await makeRig())
    const hex = generatedSha256(SIZE, 9)
    let source: InOrderSource | undefined
    rig.fetcher.useSources({ sourceFor: (_id, up) => { source = new InOrderSource(up, () => rig.store.blobSize(hex) !== undefined); return source } })
    // Small pieces over several connections: they land out of order.
    const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex }), { url: new URL(server.url + '/f.bin') }, { chunkSize: 256 * 1024, concurrency: 6 })
    if (got.kind !== 'blob') throw new Error('expected a blob')
    expect((await sha256Of(got.open(0, SIZE))).hex).toBe(hex)
    got.release()
    const s = source as InOrderSource
    expect(s.bytes).toBe(SIZE)
    expect(s.hash.digest('hex')).toBe(hex)
    expect(s.verifiedAs).toBe(hex)
    expect(s.committedWhenVerified).toBe(false)
  })
})
