import { createSecretKey, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WireError } from '../../protocol/errors.ts'
import { putBlob, startKeyedCluster } from './helpers.ts'
import type { ClusterTestNode, KeyedCluster } from './helpers.ts'

/** In a keyed cluster a holder's piece list must carry its HMAC under the cluster's key. */
describe('keyed cluster: piece lists are vouched for', () => {
  const MiB = 1 << 20
  let a: ClusterTestNode
  let b: ClusterTestNode
  let cluster: KeyedCluster | undefined

  beforeAll(async () => {
    cluster = await startKeyedCluster(2)
    ;[a, b] = cluster.nodes as [ClusterTestNode, ClusterTestNode]
  }, 60_000)

  afterAll(async () => { await cluster?.stop() })

  it('takes a list with the right mac and refuses one with another', async () => {
    const good = await putBlob(a, randomBytes(3 * MiB + 1))
    const t = await b.cluster.running?.peers.ticket(a.peerId, good)
    if (t === undefined) throw new Error('no cluster')
    expect((await b.cluster.running?.peers.pieceList(t))?.length).toBe(4 * 32)

    // a now signs with a key that is not the cluster's: as if someone on the wire swapped the list.
    const data = a.cluster.running?.data as unknown as { init: { vouchKey?: KeyObject } }
    data.init.vouchKey = createSecretKey(Buffer.alloc(32, 9))
    const other = await putBlob(a, randomBytes(2 * MiB + 1))
    const t2 = await b.cluster.running?.peers.ticket(a.peerId, other)
    if (t2 === undefined) throw new Error('no cluster')
    const err = await b.cluster.running?.peers.pieceList(t2).then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(WireError)
    expect((err as WireError).message).toMatch(/not vouched/)
  })
})
