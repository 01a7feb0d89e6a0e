import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { PieceHasher } from '../../protocol/pieces.ts'
import { fetchBlob, putBlob, startClusterNode, startFileUpstream, until } from './helpers.ts'
import type { ClusterTestNode, CountingUpstream } from './helpers.ts'
import { blobData } from './lan/blob-data.ts'
import { rotEveryUnit } from './lan/disk-fault.ts'

const MiB = 1 << 20

/**
 * Two members hold a blob; one copy rotted on disk after its piece list was made (mtime and inode kept,
 * so its own store does not notice). A third member's download spreads its ranges over both: the rotten
 * holder's first unit fails its hash, it is banned, and its ranges come again from the other holder, not
 * from the upstream. (In one process both answer the lookup at once, so both are used.)
 */
describe('two holders, one rotten', () => {
  const data = blobData(8 * MiB + 11, 71)
  const hex = createHash('sha256').update(data).digest('hex')
  let a: ClusterTestNode
  let b: ClusterTestNode
  let c: ClusterTestNode
  let upstream: CountingUpstream

  beforeAll(async () => {
    a = await startClusterNode()
    b = await startClusterNode({ peers: [a.addr] })
    c = await startClusterNode({ peers: [a.addr, b.addr], lookup_ms: 5000 })
    c.fetcher.useSources(c.cluster)
    upstream = await startFileUpstream(data)
    for (const n of [a, b]) {
      await putBlob(n, data)
      await until(() => existsSync(join(n.dir, 'cluster', 'pieces', hex)), 20_000, 'piece list')
    }
    await until(() => c.cluster.running?.membership.memberIds().length === 2, 20_000, 'membership')
  }, 60_000)

  afterAll(async () => {
    await c?.stop()
    await b?.stop()
    await a?.stop()
    await upstream?.close()
  })

  it('the rotten holder is banned and its ranges come from the other one; no upstream byte', async () => {
    expect(await rotEveryUnit(a.store.layout.blobPath(hex))).toBe(9)
    const got = await fetchBlob(c.fetcher, digestIdentity({ algorithm: 'sha256', hex }), upstream.url)
    expect(createHash('sha256').update(got).digest('hex')).toBe(hex)
    expect(upstream.bytes).toBe(0)
    expect(c.cluster.bans.isBanned(a.peerId)).toBe(true)
    expect(c.cluster.bans.isBanned(b.peerId)).toBe(false)
    expect(c.cluster.localStats().bytes_from_peers).toBeGreaterThanOrEqual(data.length)
    // a was told: it hashes its copy again and drops it.
    await until(async () => !(await a.store.hasDigest(hex)), 20_000, 'a dropped its rotten copy')
  }, 60_000)
})

/**
 * A holder whose copy is wrong and whose piece list was made from the same wrong bytes (a list remade
 * after its disk rotted, or a member lying consistently): every unit passes its hash, only the whole
 * digest fails. The holder is banned and told, the asker's next try goes upstream, and the holder drops
 * its copy.
 */
describe('a holder whose piece list matches its wrong bytes', () => {
  const data = blobData(6 * MiB + 5, 72)
  const hex = createHash('sha256').update(data).digest('hex')
  let a: ClusterTestNode
  let c: ClusterTestNode
  let upstream: CountingUpstream

  beforeAll(async () => {
    a = await startClusterNode()
    c = await startClusterNode({ peers: [a.addr], lookup_ms: 5000 })
    c.fetcher.useSources(c.cluster)
    upstream = await startFileUpstream(data)
    await putBlob(a, data)
    const listPath = join(a.dir, 'cluster', 'pieces', hex)
    await until(() => existsSync(listPath), 20_000, 'piece list')
    await until(() => c.cluster.running?.membership.memberIds().length === 1, 20_000, 'membership')
    expect(await rotEveryUnit(a.store.layout.blobPath(hex))).toBe(7)
    const pieces = new PieceHasher()
    pieces.update(await readFile(a.store.layout.blobPath(hex)))
    await writeFile(listPath, pieces.digest())
  }, 60_000)

  afterAll(async () => {
    await c?.stop()
    await a?.stop()
    await upstream?.close()
  })

  it('fails the whole digest once: the holder is banned and told, and the retry comes from upstream', async () => {
    const identity = digestIdentity({ algorithm: 'sha256', hex })
    await expect(fetchBlob(c.fetcher, identity, upstream.url)).rejects.toThrow()
    expect(c.cluster.bans.isBanned(a.peerId)).toBe(true)
    await until(() => c.fetcher.activeDownloads().length === 0, 20_000, 'the failed download settled')
    const got = await fetchBlob(c.fetcher, identity, upstream.url)
    expect(createHash('sha256').update(got).digest('hex')).toBe(hex)
    expect(upstream.bytes).toBeGreaterThanOrEqual(data.length)
    await until(async () => !(await a.store.hasDigest(hex)), 20_000, 'a dropped its wrong copy')
  }, 60_000)
})
