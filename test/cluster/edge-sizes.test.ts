import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { fetchBlob, fetchFromHolder, startClusterNode, startFileUpstream, until, writeKeyFile } from './helpers.ts'
import type { ClusterTestNode } from './helpers.ts'

const MiB = 1 << 20
const U = MiB

describe('keyed cluster: blobs of every awkward size reach a member from a holder, by digest and by URL', () => {
  let a: ClusterTestNode
  let b: ClusterTestNode
  let keyDir: string

  beforeAll(async () => {
    keyDir = await mkdtemp(join(tmpdir(), 'aimirror-key-'))
    const key = await writeKeyFile(keyDir)
    a = await startClusterNode({ key_file: key })
    b = await startClusterNode({ key_file: key, peers: [a.addr], lookup_ms: 5000 })
    a.fetcher.useSources(a.cluster)
    b.fetcher.useSources(b.cluster)
    await until(() => b.cluster.running?.membership.isMember(a.peerId) === true && a.cluster.running?.membership.isMember(b.peerId) === true, 20_000, 'membership')
  }, 60_000)

  afterAll(async () => {
    await b?.stop()
    await a?.stop()
    await rm(keyDir, { recursive: true, force: true })
  })

  const sizes = [0, 1, 65_537, U - 1, U, U + 1, 2 * U, 3 * U - 7]
  for (const [size, by] of [...sizes.map(s => [s, 'digest'] as const), ...sizes.map(s => [s, 'url'] as const)]) {
    it(`${size} bytes, named by ${by}`, async () => {
      const data = randomBytes(size)
      const r = await fetchFromHolder(a, b, data, by)
      expect(r.got.equals(data)).toBe(true)
      // A URL's first range comes from the upstream: it tells which version the URL names now.
      expect(r.upstreamBytes).toBe(by === 'url' ? Math.min(size, 128 << 10) : 0)
      expect(r.peerBytes).toBe(size - r.upstreamBytes)
    }, 30_000)
  }

  for (const size of sizes) {
    it(`${size} bytes, asked by both at once by URL: right bytes on both`, async () => {
      const data = randomBytes(size)
      const upstream = await startFileUpstream(data)
      try {
        const identity = urlIdentity(upstream.url)
        const [onA, onB] = await Promise.all([fetchBlob(a.fetcher, identity, upstream.url), fetchBlob(b.fetcher, identity, upstream.url)])
        expect(onA.equals(data)).toBe(true)
        expect(onB.equals(data)).toBe(true)
        expect(upstream.bytes).toBeLessThanOrEqual(2 * size)
      } finally {
        await upstream.close()
      }
    }, 30_000)
  }
})
