import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { fetchBlob, putBlob, startClusterNode, startFileUpstream, until } from './helpers.ts'
import type { ClusterTestNode, CountingUpstream } from './helpers.ts'
import { blobData } from './lan/blob-data.ts'

const MiB = 1 << 20

type Handle = (req: IncomingMessage, res: ServerResponse) => Promise<void>

/**
 * Makes a node's data port break every read of a whole blob after `after` bytes: it resets the
 * connection (a failing disk, a crashing handler), or stops sending while the connection stays up.
 */
function breakReads (node: ClusterTestNode, how: 'reset' | 'hang', after: number): void {
  const data = node.cluster.running?.data as unknown as { handle: Handle }
  const handle = data.handle.bind(data)
  data.handle = async (req, res) => {
    if (req.method === 'GET' && !(req.url ?? '').includes('pieces')) {
      let sent = 0
      const write = res.write.bind(res) as (chunk: Buffer, cb?: () => void) => boolean
      res.write = ((chunk: Buffer, cb?: () => void): boolean => {
        if (sent + chunk.length <= after) {
          sent += chunk.length
          return write(chunk, cb)
        }
        write(chunk.subarray(0, after - sent))
        sent = after
        if (how === 'reset') setTimeout(() => { req.socket.resetAndDestroy() }, 50)
        return false
      }) as typeof res.write
    }
    await handle(req, res)
  }
}

/**
 * A member holding a blob that breaks off every read (or goes silent mid-read) while it stays up and
 * answers pings: the asker's client still gets the blob, from the upstream, within seconds.
 */
describe('a holder that breaks off its reads', () => {
  const data = blobData(6 * MiB + 3, 81)
  const hex = createHash('sha256').update(data).digest('hex')
  const open: Array<{ stop?: () => Promise<void>, close?: () => Promise<void> }> = []
  afterEach(async () => {
    for (const x of open.splice(0).reverse()) await (x.stop ?? x.close)?.call(x)
  })

  for (const how of ['reset', 'hang'] as const) {
    it(`${how === 'reset' ? 'resets the connection' : 'stops sending'} after 600 KB: the blob comes from the upstream instead`, async () => {
      const a = await startClusterNode()
      open.push(a)
      const c = await startClusterNode({ peers: [a.addr], lookup_ms: 5000 })
      open.push(c)
      c.fetcher.useSources(c.cluster)
      const upstream: CountingUpstream = await startFileUpstream(data)
      open.push(upstream)
      await putBlob(a, data)
      await until(() => existsSync(join(a.dir, 'cluster', 'pieces', hex)), 20_000, 'piece list')
      await until(() => c.cluster.running?.membership.memberIds().length === 1, 20_000, 'membership')
      breakReads(a, how, 600_000)
      const began = Date.now()
      const got = await fetchBlob(c.fetcher, digestIdentity({ algorithm: 'sha256', hex }), upstream.url)
      expect(createHash('sha256').update(got).digest('hex')).toBe(hex)
      // It held the client for 20 s and then failed it (504); it waited for the read timeout after that.
      expect(Date.now() - began).toBeLessThan(8_000)
      expect(upstream.bytes).toBeGreaterThan(5 * MiB)
    }, 60_000)
  }
})
