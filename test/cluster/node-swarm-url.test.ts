import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { RequestListener, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestNode } from '../helpers/node.ts'
import { startNodeCluster, until, writeKeyFile } from './helpers.ts'
import { blobData, sha256Hex } from './lan/blob-data.ts'
import { blobRegistry, throttled } from './lan/registry.ts'
import type { BlobRegistry } from './lan/registry.ts'
import { URL_FIRST } from '../../node/cluster/swarm-source.ts'

const MiB = 1 << 20

/**
 * Files behind a generic `parallel` rule have no digest before they are downloaded: the cache keys them
 * by URL. Members of a keyed cluster ask each other by that URL too; open clusters never do, and neither
 * does a request that carries a client's credentials.
 */
async function startCluster (n: number, key: string | null, upstream: string): Promise<TestNode[]> {
  // The registry's blob paths, fetched as plain files (no OCI handler: nothing knows their digest);
  // under /final/ keyed by the URL the request ends at (the default), which the first range learns.
  const files = { strategy: 'parallel', min_size: 0, concurrency: 4, chunk_size: 1 << 20 }
  const rules = [
    { name: 'files', path_prefix: '/v2/library/demo/blobs/', upstream, cache_key_source: 'original', ...files },
    { name: 'final', path_prefix: '/final/', strip_prefix: true, upstream, cache_key_source: 'final', ...files }
  ]
  const cluster = { enabled: true, lookup_ms: 1000, ...(key === null ? {} : { key_file: key }) }
  return await startNodeCluster(n, { rules, cluster })
}

interface Scenario { server: Server, nodes: TestNode[], stop: () => Promise<void> }

/** An upstream on 127.0.0.1 with `handler`, and `n` nodes (keyed unless `open`) on it. */
async function startScenario (handler: RequestListener, n: number, open = false): Promise<Scenario> {
  const server = createServer(handler)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-url-names-'))
  const nodes = await startCluster(n, open ? null : await writeKeyFile(dir), `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  return {
    server,
    nodes,
    async stop () {
      await Promise.all(nodes.map(async t => await t.stop()))
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
      await rm(dir, { recursive: true, force: true })
    }
  }
}

async function get (node: TestNode, path: string, headers: Record<string, string> = {}): Promise<Buffer> {
  const res = await fetch(`${node.url}${path}`, { headers, signal: AbortSignal.timeout(30_000) })
  expect(res.status).toBe(200)
  return Buffer.from(await res.arrayBuffer())
}

async function blobCount (node: TestNode): Promise<number> {
  return ((await (await fetch(`${node.url}/stats`)).json()) as { cache: { file_count: number } }).cache.file_count
}

/** Gets `path` through `node` and waits for the node to commit it. */
async function hold (node: TestNode, path: string, headers: Record<string, string> = {}): Promise<Buffer> {
  const count = await blobCount(node)
  const body = await get(node, path, headers)
  await until(async () => await blobCount(node) > count, 20_000, 'commit')
  return body
}

const peerBytes = (node: TestNode): number => node.node.components.cluster?.localStats().bytes_from_peers ?? 0

describe('keyed cluster: downloads named only by their URL are shared', () => {
  const shared = blobData(12 * MiB + 333, 21)
  const late = blobData(3 * MiB + 5, 22)
  const gated = blobData(2 * MiB + 9, 23)
  const viaFinal = blobData(4 * MiB + 3, 25)
  let registry: BlobRegistry
  let scenario: Scenario | undefined
  let nodes: TestNode[] = []

  beforeAll(async () => {
    registry = blobRegistry(shared, late, gated, viaFinal)
    scenario = await startScenario(throttled(registry, 8 * MiB), 3)
    nodes = scenario.nodes
  }, 60_000)

  afterAll(async () => { await scenario?.stop() })

  it('nodes asking for the same cold URL at once fetch it about once from the upstream', async () => {
    const path = registry.paths[0] as string
    const bodies = await Promise.all(nodes.map(async n => await hold(n, path)))
    for (const b of bodies) expect(sha256Hex(b)).toBe(sha256Hex(shared))
    // Alone, each would take the whole file from the upstream (3 ×).
    expect(registry.sent()).toBeLessThan(1.5 * shared.length)
    expect(nodes.filter(n => peerBytes(n) > 0).length).toBeGreaterThanOrEqual(2)
  }, 60_000)

  /** `a` holds `path`, then `b` asks for it: what `b` got, and the upstream's and peers' bytes for it. */
  async function heldThenAsked (path: string): Promise<{ first: Buffer, got: Buffer, upstream: number, peers: number }> {
    const [a, b] = nodes as [TestNode, TestNode]
    const first = await hold(a, path)
    const sent = registry.sent()
    const before = peerBytes(b)
    const got = await get(b, path)
    return { first, got, upstream: registry.sent() - sent, peers: peerBytes(b) - before }
  }

  it('a node asking later takes the committed file from a peer, all but the first range (which learns the upstream\'s version)', async () => {
    const r = await heldThenAsked(registry.paths[1] as string)
    expect(sha256Hex(r.first)).toBe(sha256Hex(late))
    expect(sha256Hex(r.got)).toBe(sha256Hex(late))
    expect(r.upstream).toBeLessThanOrEqual(URL_FIRST)
    expect(r.peers).toBeGreaterThanOrEqual(late.length - URL_FIRST)
  }, 60_000)

  it('keyed by the URL a request ends at, only a small first range (which learns that URL) comes from the upstream', async () => {
    const r = await heldThenAsked(`/final${registry.paths[3] as string}`)
    expect(sha256Hex(r.first)).toBe(sha256Hex(viaFinal))
    expect(sha256Hex(r.got)).toBe(sha256Hex(viaFinal))
    // The first range is kept small when peers may have the rest (the rule's chunk_size is 1 MiB).
    expect(r.upstream).toBeLessThanOrEqual(URL_FIRST)
    expect(r.peers).toBeGreaterThanOrEqual(viaFinal.length - URL_FIRST)
  }, 60_000)

  it('what a client fetched with credentials is given to members once the upstream serves it without them; a request with credentials takes nothing from them', async () => {
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode]
    const path = registry.paths[2] as string
    expect(sha256Hex(await hold(a, path, { authorization: 'Bearer secret' }))).toBe(sha256Hex(gated))
    // a's copy came with credentials; a asked the upstream for its first byte without them, and got the
    // same file (this upstream serves anyone): b takes it from a. (A private one: private-blobs.test.ts.)
    await new Promise(resolve => setTimeout(resolve, 500))
    let sent = registry.sent()
    const peersBefore = peerBytes(b)
    expect(sha256Hex(await hold(b, path))).toBe(sha256Hex(gated))
    expect(registry.sent() - sent).toBeLessThanOrEqual(URL_FIRST)
    expect(peerBytes(b) - peersBefore).toBeGreaterThanOrEqual(gated.length - URL_FIRST)
    // c's request carries credentials (what the URL returns may depend on them): not from members.
    sent = registry.sent()
    const before = peerBytes(c)
    expect(sha256Hex(await get(c, path, { cookie: 'session=1' }))).toBe(sha256Hex(gated))
    expect(registry.sent() - sent).toBeGreaterThanOrEqual(gated.length)
    expect(peerBytes(c)).toBe(before)
  }, 60_000)
})

describe('open cluster: downloads named only by their URL are not shared', () => {
  const data = blobData(2 * MiB + 1, 24)
  let registry: BlobRegistry
  let scenario: Scenario | undefined
  let nodes: TestNode[] = []

  beforeAll(async () => {
    registry = blobRegistry(data)
    scenario = await startScenario((req, res) => registry.handle(req, res), 2, true)
    nodes = scenario.nodes
  }, 60_000)

  afterAll(async () => { await scenario?.stop() })

  it('a member holding the file is not asked for it: nothing could check what it sends', async () => {
    const [a, b] = nodes as [TestNode, TestNode]
    expect(sha256Hex(await hold(a, registry.path))).toBe(registry.digest)
    const sent = registry.sent()
    expect(sha256Hex(await get(b, registry.path))).toBe(registry.digest)
    expect(registry.sent() - sent).toBe(data.length)
    expect(peerBytes(b)).toBe(0)
  }, 60_000)
})

describe('keyed cluster: a member\'s copy of a URL whose content changed upstream since is not used', () => {
  const v1 = blobData(3 * MiB + 7, 31)
  const v2 = blobData(3 * MiB + 7, 32)
  // Another file's two versions (a blob already held would not show as a new commit).
  const o1 = blobData(2 * MiB + 3, 33)
  const o2 = blobData(2 * MiB + 3, 34)
  const t1 = blobData(1 * MiB + 11, 35)
  const t2 = blobData(1 * MiB + 13, 36)
  const t3 = blobData(1 * MiB + 17, 39)
  const l1 = blobData(2 * MiB + 9, 37)
  const l2 = blobData(2 * MiB + 9, 38)
  const w1 = blobData(2 * MiB + 21, 40)
  const w2 = blobData(2 * MiB + 21, 41)
  /** Off: the upstream gives Last-Modified and no ETag. */
  let withEtag = true
  let down = false
  /** A status the upstream answers with instead of the file. */
  let refuse: number | null = null
  let version = 1
  let sent = 0
  let scenario: Scenario | undefined
  let nodes: TestNode[] = []

  beforeAll(async () => {
    // One file whose content (same size) and ETag change with `version`, Range supported.
    scenario = await startScenario((req, res) => {
      if (down) { req.socket.destroy(); return }
      if (refuse !== null) { res.writeHead(refuse, { 'content-length': 0 }); res.end(); return }
      const other = req.url?.endsWith('/other.bin') === true
      const lm = req.url?.endsWith('/lm.bin') === true
      // A weak ETag made of the size alone, the same for both versions, as some file servers send.
      const weak = req.url?.endsWith('/weak.bin') === true
      const data = weak ? (version === 1 ? w1 : w2) : req.url?.endsWith('/third.bin') === true ? t1 : req.url?.endsWith('/sixth.bin') === true ? t3 : req.url?.endsWith('/fourth.bin') === true ? t2 : lm ? (version === 1 ? l1 : l2) : version === 1 ? (other ? o1 : v1) : (other ? o2 : v2)
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
      const start = m === null ? 0 : Number(m[1])
      const end = m === null || m[2] === '' ? data.length : Math.min(data.length, Number(m[2]) + 1)
      const headers: Record<string, string | number> = weak
        ? { etag: `W/"${data.length}"`, 'content-length': end - start, 'accept-ranges': 'bytes' }
        : withEtag
        ? { etag: `"v${version}"`, 'content-length': end - start, 'accept-ranges': 'bytes' }
        : { 'last-modified': new Date(Date.UTC(2026, 0, version)).toUTCString(), 'content-length': end - start, 'accept-ranges': 'bytes' }
      if (m !== null) headers['content-range'] = `bytes ${start}-${end - 1}/${data.length}`
      res.writeHead(m === null ? 200 : 206, headers)
      sent += end - start
      res.end(data.subarray(start, end))
    }, 3)
    nodes = scenario.nodes
  }, 60_000)

  afterAll(async () => { await scenario?.stop() })

  /** The upstream moves to version 2: `c` gets `next` whole from the upstream, nothing from members. */
  async function newVersionFromUpstream (c: TestNode, path: string, next: Buffer): Promise<void> {
    version = 2
    const upstreamBefore = sent
    const before = peerBytes(c)
    expect(sha256Hex(await get(c, path))).toBe(sha256Hex(next))
    expect(peerBytes(c)).toBe(before)
    expect(sent - upstreamBefore).toBeGreaterThanOrEqual(next.length)
  }

  it('the same ETag is read from the member; another one is fetched from the upstream, never mixed', async () => {
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode]
    const path = '/final/v2/library/demo/blobs/model.bin'
    expect(sha256Hex(await hold(a, path))).toBe(sha256Hex(v1))
    const before = peerBytes(b)
    expect(sha256Hex(await hold(b, path))).toBe(sha256Hex(v1))
    expect(peerBytes(b) - before).toBeGreaterThanOrEqual(v1.length - MiB)

    await newVersionFromUpstream(c, path, v2)
  }, 60_000)

  it('without ETags, Last-Modified tells the versions apart: the same one is read from the member, another never', async () => {
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode]
    const path = '/v2/library/demo/blobs/lm.bin'
    withEtag = false
    version = 1
    try {
      expect(sha256Hex(await hold(a, path))).toBe(sha256Hex(l1))
      const before = peerBytes(b)
      expect(sha256Hex(await hold(b, path))).toBe(sha256Hex(l1))
      expect(peerBytes(b) - before).toBeGreaterThanOrEqual(l1.length - URL_FIRST)
      await newVersionFromUpstream(c, path, l2)
    } finally {
      withEtag = true
    }
  }, 60_000)

  it('a weak ETag that stays while the bytes change is no version: the member\'s older copy is not read, nor joined to the new one', async () => {
    const [a, c] = [nodes[0], nodes[2]] as [TestNode, TestNode]
    const path = '/v2/library/demo/blobs/weak.bin'
    version = 1
    expect(sha256Hex(await hold(a, path))).toBe(sha256Hex(w1))
    await newVersionFromUpstream(c, path, w2)
  }, 60_000)

  it('keyed by the URL asked for, the upstream\'s first range tells the version: a member holding an older one is not read', async () => {
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode]
    const path = '/v2/library/demo/blobs/other.bin'
    version = 1
    expect(sha256Hex(await hold(a, path))).toBe(sha256Hex(o1))
    const before = peerBytes(b)
    const upstreamBefore = sent
    expect(sha256Hex(await hold(b, path))).toBe(sha256Hex(o1))
    // The same version: only the first range from the upstream, the rest from the member.
    expect(sent - upstreamBefore).toBeLessThanOrEqual(URL_FIRST)
    expect(peerBytes(b) - before).toBeGreaterThanOrEqual(o1.length - URL_FIRST)

    await newVersionFromUpstream(c, path, o2)
  }, 60_000)

  /** `a` holds `path` (`data`); then with the upstream unreachable `b`, and with it answering 503 `c`, get it all from members. */
  async function fromMembersWhileAway (path: string, data: Buffer): Promise<void> {
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode]
    expect(sha256Hex(await hold(a, path))).toBe(sha256Hex(data))
    down = true
    let before = peerBytes(b)
    expect(sha256Hex(await hold(b, path))).toBe(sha256Hex(data))
    expect(peerBytes(b) - before).toBe(data.length)
    down = false
    refuse = 503
    before = peerBytes(c)
    expect(sha256Hex(await get(c, path))).toBe(sha256Hex(data))
    expect(peerBytes(c) - before).toBe(data.length)
  }

  it('with the upstream unreachable or failing (5xx), a member\'s copy is served; a 4xx is the upstream\'s word', async () => {
    const [a, b] = nodes as [TestNode, TestNode, TestNode]
    try {
      await fromMembersWhileAway('/v2/library/demo/blobs/third.bin', t1)
      // Refused (the file is gone, or not for this client): members' copies are not handed out instead.
      refuse = null
      const fourth = '/v2/library/demo/blobs/fourth.bin'
      expect(sha256Hex(await hold(a, fourth))).toBe(sha256Hex(t2))
      refuse = 403
      const before = peerBytes(b)
      const res = await fetch(`${b.url}${fourth}`)
      expect(res.status).toBe(403)
      expect(peerBytes(b)).toBe(before)
    } finally {
      down = false
      refuse = null
    }
  }, 60_000)

  it('keyed by the final URL (the default), with the upstream unreachable or failing, a member\'s copy is served too', async () => {
    try {
      await fromMembersWhileAway('/final/v2/library/demo/blobs/sixth.bin', t3)
    } finally {
      down = false
      refuse = null
    }
  }, 60_000)
})
