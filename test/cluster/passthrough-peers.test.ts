import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { readAll, startHolderPair, writeKeyFile } from './helpers.ts'
import type { HolderPair } from './helpers.ts'
import { blobData } from './lan/blob-data.ts'

const MiB = 1 << 20

/** b passes through (uncached: larger than `maxSize`) a blob a holds; returns the whole and a range. */
async function passThrough (pair: HolderPair, data: Buffer): Promise<{ whole: Buffer, part: Buffer }> {
  const { b, upstream, digest } = pair
  b.fetcher.useSources(b.cluster)
  const got = await b.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: digest }), { url: new URL(upstream.url) }, { chunkSize: MiB, concurrency: 4, maxSize: MiB })
  if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
  expect(got.from).toBe('passthrough')
  try {
    return { whole: await readAll(got.open(0, data.length)), part: await readAll(got.open(2 * MiB + 5, 4 * MiB + 9)) }
  } finally {
    got.release()
  }
}

describe('a blob larger than this node may cache', () => {
  let pair: HolderPair | undefined
  let keyDir: string | undefined
  afterEach(async () => {
    await pair?.stop()
    pair = undefined
    if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true })
    keyDir = undefined
  })

  it('keyed cluster: passes through from the member that holds it, checked against its vouched piece list, not from the upstream', async () => {
    const data = blobData(5 * MiB + 77, 31)
    keyDir = await mkdtemp(join(tmpdir(), 'aimirror-key-'))
    pair = await startHolderPair(data, { cluster: { key_file: await writeKeyFile(keyDir) } })
    const { whole, part } = await passThrough(pair, data)
    expect(createHash('sha256').update(whole).digest('hex')).toBe(pair.digest)
    expect(part.equals(data.subarray(2 * MiB + 5, 4 * MiB + 9))).toBe(true)
    expect(pair.upstream.bytes).toBe(0)
    const stats = pair.b.store.stats()
    expect(stats).toMatchObject({ file_count: 0, bytes_from_upstream: 0 })
    // Whole verification units cross the LAN: at least what the client read.
    expect(stats.bytes_from_peers).toBeGreaterThanOrEqual(data.length + (4 * MiB + 9) - (2 * MiB + 5))
  }, 60_000)

  it('open cluster: from the upstream (a holder\'s piece list is its own word there, and nothing checks the digest before the last byte)', async () => {
    const data = blobData(5 * MiB + 5, 32)
    pair = await startHolderPair(data)
    const { whole } = await passThrough(pair, data)
    expect(createHash('sha256').update(whole).digest('hex')).toBe(pair.digest)
    expect(pair.b.store.stats().bytes_from_peers).toBe(0)
    expect(pair.upstream.bytes).toBeGreaterThanOrEqual(data.length)
  }, 60_000)
})
