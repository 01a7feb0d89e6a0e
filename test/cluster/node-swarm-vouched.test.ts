import { createSecretKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatsView } from '../../node/cluster/view.ts'
import type { TestNode } from '../helpers/node.ts'
import { startNodeCluster, until, writeKeyFile } from './helpers.ts'
import { blobData, sha256Hex } from './lan/blob-data.ts'
import { blobRegistry, registryGet } from './lan/registry.ts'
import type { BlobRegistry } from './lan/registry.ts'

const MiB = 1 << 20
const HOLD = 6 * MiB

/** An upstream that sends bytes from HOLD on only once `release()` was called (`hold()` closes it again). */
function gatedUpstream (registry: BlobRegistry): { handle: (req: IncomingMessage, res: ServerResponse) => void, hold: () => void, release: () => void } {
  let release = (): void => {}
  let open = Promise.resolve()
  const hold = (): void => { open = new Promise<void>(resolve => { release = resolve }) }
  hold()
  return {
    hold,
    release: () => release(),
    handle (req, res) {
      const start = Number(/^bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0)
      const end = res.end.bind(res)
      const gate = open
      res.end = ((chunk?: unknown) => {
        if (!Buffer.isBuffer(chunk) || start + chunk.length <= HOLD) return end(chunk as Buffer)
        const head = Math.max(0, HOLD - start)
        if (head > 0) res.write(chunk.subarray(0, head))
        gate.then(() => { if (!res.destroyed) end(chunk.subarray(head)) }, () => {})
        return res
      }) as typeof res.end
      registry.handle(req, res)
    }
  }
}

/** A client that reads a response as it comes, counting bytes. */
function reader (url: string): { received: () => number, body: Promise<Buffer> } {
  let n = 0
  const body = registryGet(url).then(async res => {
    expect(res.status).toBe(200)
    const parts: Buffer[] = []
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) { n += c.length; parts.push(Buffer.from(c)) }
    return Buffer.concat(parts)
  })
  body.catch(() => {})
  return { received: () => n, body }
}

/**
 * Two nodes, the second asking for a blob the first is still downloading (its tail held at the
 * upstream): a keyed cluster's member vouches for the bytes it has, so the second node's client gets
 * them at once; an open cluster's client gets them only once the whole blob verified.
 */
describe.each([
  { mode: 'keyed', keyed: true },
  { mode: 'open', keyed: false }
])('bytes of a peer\'s download in flight reach clients ($mode cluster)', ({ keyed }) => {
  const data = blobData(8 * MiB + 777, keyed ? 21 : 22)
  const second = blobData(8 * MiB + 5, keyed ? 23 : 24)
  let registry: BlobRegistry
  let gate: ReturnType<typeof gatedUpstream>
  let server: Server
  let keyDir: string
  const nodes: TestNode[] = []

  beforeAll(async () => {
    registry = blobRegistry(data, second)
    gate = gatedUpstream(registry)
    server = createServer(gate.handle)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    keyDir = await mkdtemp(join(tmpdir(), 'aimirror-key-'))
    const key = keyed ? { key_file: await writeKeyFile(keyDir) } : {}
    const rules = [
      { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', cache_key_source: 'original', min_size: 0, concurrency: 4, chunk_size: 1 << 20 },
      { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy' }
    ]
    const server_ = { read_timeout_s: 30 }
    await startNodeCluster(2, { server: server_, rules, cluster: { enabled: true, lookup_ms: 1000, ...key } }, nodes)
  }, 60_000)

  afterAll(async () => {
    gate?.release()
    await Promise.all(nodes.map(async n => await n.stop()))
    server?.closeAllConnections()
    await new Promise<void>(resolve => server?.close(() => resolve()) ?? resolve())
    if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true })
  })

  it(keyed ? 'the second client streams what the first node has, before the blob is complete' : 'the second client gets the peer\'s bytes only after the blob verified', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    const fromPeers = (): number => b.node.components.cluster?.localStats().bytes_from_peers ?? 0
    const onA = reader(`${a.url}${registry.path}`)
    await until(() => onA.received() >= HOLD, 20_000, 'a has everything before the held tail')
    const onB = reader(`${b.url}${registry.path}`)
    await until(() => fromPeers() >= HOLD, 20_000, 'b read what a has')
    if (keyed) {
      await until(() => onB.received() >= HOLD, 5_000, 'b\'s client streams the peer\'s bytes')
    } else {
      await sleep(500)
      expect(onB.received()).toBe(0)
    }
    // Nothing past the held tail has reached either node yet: the bytes b's client got came from a.
    expect(registry.sent()).toBeLessThanOrEqual(HOLD + 4 * MiB)
    gate.release()
    expect(sha256Hex(await onA.body)).toBe(registry.digest)
    expect(sha256Hex(await onB.body)).toBe(registry.digest)
    expect(registry.sent()).toBeLessThan(1.5 * data.length)
  }, 60_000)

  // Only a keyed cluster's members vouch.
  if (keyed) {
    it('a member whose tags do not match its bytes is banned; the client still gets the right blob', async () => {
      const [a, b] = nodes as [TestNode, TestNode]
      const path = registry.paths[1] as string
      gate.hold()
      // a vouches with a key that is not the cluster's: as if it sent bytes other than the ones it tagged.
      const data = a.node.components.cluster?.running?.data as unknown as { init: { vouchKey?: KeyObject } }
      data.init.vouchKey = createSecretKey(Buffer.alloc(32, 7))
      const fromPeers = (): number => b.node.components.cluster?.localStats().bytes_from_peers ?? 0
      const before = fromPeers()
      const onA = reader(`${a.url}${path}`)
      await until(() => onA.received() >= HOLD, 20_000, 'a has everything before the held tail')
      const onB = reader(`${b.url}${path}`)
      await until(() => b.node.components.cluster?.bans.isBanned(a.node.components.cluster?.running?.libp2p.peerId.toString() ?? '') === true, 20_000, 'a banned by b')
      gate.release()
      expect(sha256Hex(await onA.body)).toBe(path.slice(-64))
      expect(sha256Hex(await onB.body)).toBe(path.slice(-64))
      // Nothing a sent reached b's download: b fetched every byte itself.
      expect(fromPeers()).toBe(before)
      // The ban shows in the cluster view, from any node.
      const view = await (await fetch(`${a.url}/cluster/stats`)).json() as ClusterStatsView
      expect(view.nodes.find(n => !n.self)?.peer_bans).toBe(1)
      expect(view.totals.peer_bans).toBe(1)
    }, 60_000)
  }
})
