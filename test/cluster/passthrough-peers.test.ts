import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { readAll, startHolderPair } from './helpers.ts'
import type { HolderPair } from './helpers.ts'
import { blobData } from './lan/blob-data.ts'

const MiB = 1 << 20

describe('a blob larger than this node may cache', () => {
  let pair: HolderPair | undefined
  afterEach(async () => { await pair?.stop(); pair = undefined })

  it('passes through from the member that holds it, verified, not from the upstream', async () => {
    const data = blobData(5 * MiB + 77, 31)
    pair = await startHolderPair(data)
    const { b, upstream, digest } = pair
    b.fetcher.useSources(b.cluster)
    const got = await b.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: digest }), { url: new URL(upstream.url) }, { chunkSize: MiB, concurrency: 4, maxSize: MiB })
    if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
    expect(got.from).toBe('passthrough')
    const whole = await readAll(got.open(0, data.length))
    const part = await readAll(got.open(2 * MiB + 5, 4 * MiB + 9))
    got.release()
    expect(createHash('sha256').update(whole).digest('hex')).toBe(digest)
    expect(part.equals(data.subarray(2 * MiB + 5, 4 * MiB + 9))).toBe(true)
    expect(upstream.bytes).toBe(0)
    expect(b.store.stats()).toMatchObject({ file_count: 0, bytes_from_upstream: 0 })
    // Whole verification units cross the LAN: at least what the client read.
    expect(b.store.stats().bytes_from_peers).toBeGreaterThanOrEqual(data.length + (4 * MiB + 9) - (2 * MiB + 5))
  }, 60_000)
})
