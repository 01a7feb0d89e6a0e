import { createHash } from 'node:crypto'
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pino } from 'pino'
import { Agent } from 'undici'
import type { ClusterConfig } from '../../config/types.ts'
import { Cluster } from '../../node/cluster/cluster.ts'
import { Fetcher } from '../../node/fetch/fetcher.ts'
import { digestIdentity, urlIdentity } from '../../node/fetch/identity.ts'
import type { BlobIdentity } from '../../node/fetch/identity.ts'
import { UpstreamSource } from '../../node/fetch/upstream-source.ts'
import type { Source } from '../../node/fetch/upstream-source.ts'
import type { Logger } from '../../node/log.ts'
import { BlobStore } from '../../node/store/blob-store.ts'
import { formatClusterKey } from '../../protocol/membership.ts'
import { startTestNode } from '../helpers/node.ts'
import type { Doc, TestNode } from '../helpers/node.ts'

export const silent = pino({ level: 'silent' })

export interface ClusterTestNode {
  readonly cluster: Cluster
  readonly store: BlobStore
  readonly fetcher: Fetcher
  readonly dir: string
  /** /ip4/127.0.0.1/tcp/<port>/p2p/<id> */
  readonly addr: string
  readonly peerId: string
  stop: () => Promise<void>
}

/** A key file in `dir` (as `aimirror keygen` writes one). */
export async function writeKeyFile (dir: string, key?: Uint8Array): Promise<string> {
  const path = join(dir, `cluster-${Math.random().toString(36).slice(2)}.key`)
  await writeFile(path, formatClusterKey(key), { mode: 0o600 })
  return path
}

/**
 * A blob store, a fetcher and a cluster on 127.0.0.1 (libp2p and data port on port 0), mDNS off, static
 * peers only: several of these in one process make a cluster without multicast.
 */
export async function startClusterNode (cluster: Partial<ClusterConfig> = {}, logger: Logger = silent, init: { refusalMs?: number, strangerGraceMs?: number } = {}): Promise<ClusterTestNode> {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-cluster-'))
  const store = new BlobStore({ logger: silent }, { dir, maxBytes: 1 << 30 })
  const agent = new Agent({ connections: 32 })
  const fetcher = new Fetcher({ store, dispatcher: agent, logger: silent }, { retryBaseMs: 20 })
  await store.start()
  await fetcher.start()
  const config: ClusterConfig = {
    enabled: true, name: 'test', listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], peers: [], key_file: null,
    data_host: '127.0.0.1', data_port: 0, data_tls: false, lookup_ms: 500, ...cluster, mdns: false
  }
  const c = new Cluster({ store, fetcher, logger }, { config, dataDir: dir, refusalMs: init.refusalMs, strangerGraceMs: init.strangerGraceMs })
  await c.start()
  const libp2p = c.running?.libp2p
  if (libp2p === undefined) throw new Error('cluster did not start')
  const addr = libp2p.getMultiaddrs().map(String).find(a => a.startsWith('/ip4/127.0.0.1/tcp/')) as string
  return {
    cluster: c,
    store,
    fetcher,
    dir,
    addr,
    peerId: libp2p.peerId.toString(),
    async stop () {
      await c.stop()
      await fetcher.stop()
      await store.stop()
      await agent.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** Puts `data` into a node's store as a committed blob keyed by its sha256; returns the hex digest. */
export async function putBlob (node: ClusterTestNode, data: Buffer, contentType = 'application/octet-stream'): Promise<string> {
  const hex = createHash('sha256').update(data).digest('hex')
  const path = join(node.dir, `put-${hex.slice(0, 8)}.tmp`)
  await writeFile(path, data)
  const fh = await open(path, 'r+')
  try {
    await node.store.commit(`sha256:${hex}`, { path, fh }, {
      digest: hex, size: data.length, contentType, headers: { 'content-type': contentType }, validator: { etag: `"${hex}"`, lastModified: null }, etag: `"${hex}"`, fetchedAt: Date.now()
    })
  } finally {
    await fh.close()
  }
  return hex
}

export async function until (cond: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

export interface CountingUpstream {
  readonly url: string
  /** Body bytes sent so far. */
  bytes: number
  requests: number
  close: () => Promise<void>
}

/** An upstream serving one file at /file with Range support, counting what it sends. */
export async function startFileUpstream (data: Buffer): Promise<CountingUpstream> {
  const sockets = new Set<Socket>()
  const state = { bytes: 0, requests: 0 }
  const server = createServer((req, res) => {
    state.requests++
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    let start = 0
    let end = data.length
    if (m !== null) {
      start = Number(m[1])
      end = m[2] === '' ? data.length : Math.min(data.length, Number(m[2]) + 1)
      if (start >= data.length) { res.writeHead(416, { 'content-range': `bytes */${data.length}` }); res.end(); return }
      res.writeHead(206, { 'content-range': `bytes ${start}-${end - 1}/${data.length}`, 'content-length': end - start, etag: '"up"', 'content-type': 'application/octet-stream' })
    } else {
      res.writeHead(200, { 'content-length': data.length, etag: '"up"', 'accept-ranges': 'bytes' })
    }
    const body = data.subarray(start, end)
    state.bytes += body.length
    res.end(body)
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const out = {
    url: `http://127.0.0.1:${port}/file`,
    get bytes () { return state.bytes },
    set bytes (v: number) { state.bytes = v },
    get requests () { return state.requests },
    set requests (v: number) { state.requests = v },
    async close () {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
  return out
}

/** A whole body read into one buffer. */
export async function readAll (body: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of body) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

/** Node a holding a blob, node b a member of its cluster, and an upstream serving the same bytes. */
export interface HolderPair {
  readonly a: ClusterTestNode
  readonly b: ClusterTestNode
  readonly upstream: CountingUpstream
  /** sha256 hex of the blob a holds. */
  readonly digest: string
  /** A download's source on `node` for blob `hex`: the cluster, with the upstream behind it. */
  swarm: (node: ClusterTestNode, hex: string) => Source
  stop: () => Promise<void>
}

export async function startHolderPair (data: Buffer, options: { cluster?: Partial<ClusterConfig>, contentType?: string } = {}): Promise<HolderPair> {
  const a = await startClusterNode(options.cluster)
  const b = await startClusterNode({ ...options.cluster, peers: [a.addr], lookup_ms: 5000 })
  const digest = await putBlob(a, data, options.contentType)
  const upstream = await startFileUpstream(data)
  const agent = new Agent()
  await until(() => b.cluster.running?.membership.isMember(a.peerId) === true, 20_000, 'membership')
  return {
    a,
    b,
    upstream,
    digest,
    swarm: (node, hex) => {
      const up = new UpstreamSource({ dispatcher: agent }, { url: new URL(upstream.url) })
      return node.cluster.sourceFor({ key: `sha256:${hex}`, sha256: hex, expected: { algorithm: 'sha256', hex } }, up)
    },
    async stop () {
      await b.stop()
      await a.stop()
      await upstream.close()
      await agent.close()
    }
  }
}

/** The whole blob `identity` names, through a node's fetch engine (cache, peers or `url`), in 1 MiB pieces. */
export async function fetchBlob (fetcher: Fetcher, identity: BlobIdentity, url: string): Promise<Buffer> {
  const got = await fetcher.acquire(identity, { url: new URL(url) }, { chunkSize: 1 << 20, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
  try {
    return await readAll(got.open(0, got.meta.size as number))
  } finally {
    got.release()
  }
}

/**
 * `holder` fetches `data` from a fresh upstream (named by its sha256 or by its URL) and commits it; then
 * `asker` fetches it. What `asker` got, and the upstream bytes and peer bytes its fetch took.
 */
export async function fetchFromHolder (holder: ClusterTestNode, asker: ClusterTestNode, data: Buffer, by: 'digest' | 'url'): Promise<{ got: Buffer, upstreamBytes: number, peerBytes: number }> {
  const upstream = await startFileUpstream(data)
  try {
    const sha256 = createHash('sha256').update(data).digest('hex')
    const identity = by === 'digest' ? digestIdentity({ algorithm: 'sha256', hex: sha256 }) : urlIdentity(upstream.url)
    if (!(await fetchBlob(holder.fetcher, identity, upstream.url)).equals(data)) throw new Error('the holder fetched wrong bytes')
    await until(async () => await holder.store.hasDigest(sha256), 20_000, 'commit on the holder')
    const sent = upstream.bytes
    const before = asker.cluster.localStats().bytes_from_peers
    const got = await fetchBlob(asker.fetcher, identity, upstream.url)
    return { got, upstreamBytes: upstream.bytes - sent, peerBytes: asker.cluster.localStats().bytes_from_peers - before }
  } finally {
    await upstream.close()
  }
}

export interface KeyedCluster {
  nodes: ClusterTestNode[]
  stop: () => Promise<void>
}

/**
 * `n` nodes of one keyed cluster (a key file in a temp dir), each with the node before it as its static
 * peer (a chain), peers' sources used by their fetchers. Resolves once each node and the one before it
 * have recorded each other as members.
 */
export async function startKeyedCluster (n: number, options: { lookup_ms?: number } = {}): Promise<KeyedCluster> {
  const keyDir = await mkdtemp(join(tmpdir(), 'aimirror-key-'))
  const key_file = await writeKeyFile(keyDir)
  const nodes: ClusterTestNode[] = []
  const stop = async (): Promise<void> => {
    for (const node of [...nodes].reverse()) await node.stop()
    await rm(keyDir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < n; i++) {
      const peers = nodes.slice(-1).map(p => p.addr)
      const node = await startClusterNode({ key_file, peers, ...(options.lookup_ms === undefined ? {} : { lookup_ms: options.lookup_ms }) })
      node.fetcher.useSources(node.cluster)
      nodes.push(node)
    }
    const member = (x: ClusterTestNode, y: ClusterTestNode): boolean => x.cluster.running?.membership.isMember(y.peerId) === true
    await until(() => nodes.every((x, i) => i === 0 || (member(x, nodes[i - 1] as ClusterTestNode) && member(nodes[i - 1] as ClusterTestNode, x))), 20_000, 'membership')
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes: [...nodes], stop }
}

/**
 * `n` nodes in this process from one config document (its `cluster` section on), each naming the ones
 * started before it as static peers; resolves once every node is a member of all the others. Each node
 * is pushed to `into` as it starts (the caller stops them, also when this throws).
 */
export async function startNodeCluster (n: number, doc: Doc, into: TestNode[] = []): Promise<TestNode[]> {
  const addrOf = (t: TestNode): string => t.node.components.cluster?.running?.libp2p.getMultiaddrs().map(String).find(x => x.startsWith('/ip4/127.0.0.1/')) as string
  const cluster = doc.cluster as Record<string, unknown> | undefined
  const first = into.length
  for (let i = 0; i < n; i++) into.push(await startTestNode({ ...doc, cluster: { enabled: true, ...cluster, peers: into.slice(first).map(addrOf) } }))
  const nodes = into.slice(first)
  for (const t of nodes) await until(() => t.node.components.cluster?.running?.membership.memberIds().length === n - 1, 20_000, 'membership')
  return nodes
}

/** The loopback libp2p address of a whole node's cluster (for another node's `cluster.peers`). */
export function p2pAddr (n: TestNode): string {
  const libp2p = n.node.components.cluster?.running?.libp2p
  if (libp2p === undefined) throw new Error('cluster not running')
  return libp2p.getMultiaddrs().map(String).find(a => a.startsWith('/ip4/127.0.0.1/')) as string
}
