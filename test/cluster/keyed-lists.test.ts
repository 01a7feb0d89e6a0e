import { createSecretKey, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WireError } from '../../protocol/errors.ts'
import { putBlob, startClusterNode, until, writeKeyFile } from './helpers.ts'
import type { ClusterTestNode } from './helpers.ts'

/** In a keyed cluster a holder's piece list must carry its HMAC under the cluster's key. */
describe('keyed cluster: piece lists are vouched for', () => {
  const MiB = 1 << 20
  let a: ClusterTestNode
  let b: ClusterTestNode
  let keyDir: string

  beforeAll(async () => {
    keyDir = await mkdtemp(join(tmpdir(), 'aimirror-key-'))
    const key_file = await writeKeyFile(keyDir)
    a = await startClusterNode({ key_file })
    b = await startClusterNode({ key_file, peers: [a.addr] })
    await until(() => b.cluster.running?.membership.isMember(a.peerId) === true, 20_000, 'membership')
  }, 60_000)

  afterAll(async () => {
    await b.stop()
    await a.stop()
    await rm(keyDir, { recursive: true, force: true })
  })

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
