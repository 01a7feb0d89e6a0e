import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { fetchBlob, startClusterNode, startFileUpstream, until } from './helpers.ts'
import type { ClusterTestNode, CountingUpstream } from './helpers.ts'
import { blobData } from './lan/blob-data.ts'

const MiB = 1 << 20

/**
 * npm publishes sha512 digests and the HuggingFace Hub git-sha1 ones: downloads keyed by them are named
 * by that key, and shared even in an open cluster (the asker checks the bytes against the digest).
 */
describe('open cluster: downloads named by another published digest', () => {
  const data = blobData(3 * MiB + 17, 61)
  const sha512 = createHash('sha512').update(data).digest('hex')
  let a: ClusterTestNode
  let b: ClusterTestNode
  let upstream: CountingUpstream

  beforeAll(async () => {
    a = await startClusterNode()
    b = await startClusterNode({ peers: [a.addr], lookup_ms: 5000 })
    a.fetcher.useSources(a.cluster)
    b.fetcher.useSources(b.cluster)
    upstream = await startFileUpstream(data)
    await until(() => b.cluster.running?.membership.isMember(a.peerId) === true, 20_000, 'membership')
  }, 60_000)

  afterAll(async () => {
    await b?.stop()
    await a?.stop()
    await upstream?.close()
  })

  it('a sha512-named blob one member holds reaches another from it, checked against the sha512', async () => {
    const identity = digestIdentity({ algorithm: 'sha512', hex: sha512 })
    expect((await fetchBlob(a.fetcher, identity, upstream.url)).equals(data)).toBe(true)
    await until(() => a.store.stats().file_count === 1, 20_000, 'commit on a')
    const sent = upstream.bytes
    expect((await fetchBlob(b.fetcher, identity, upstream.url)).equals(data)).toBe(true)
    expect(upstream.bytes).toBe(sent)
    expect(b.cluster.localStats().bytes_from_peers).toBeGreaterThanOrEqual(data.length)
    // Ranges keep to the units the holder sends whole: each unit once (one asked again at most, on a
    // busy machine), not once per range that touches it.
    expect(a.cluster.localStats().bytes_to_peers).toBeLessThanOrEqual(data.length + MiB)
  }, 60_000)
})
