import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { digestIdentity, urlIdentity } from '../../node/fetch/identity.ts'
import type { UpstreamRequest } from '../../node/fetch/acquire-types.ts'
import type { BlobIdentity } from '../../node/fetch/identity.ts'
import type { ClusterConfig } from '../../config/types.ts'
import { startClusterNode, startFileUpstream, until, writeKeyFile } from './helpers.ts'
import type { ClusterTestNode } from './helpers.ts'
import { blobData } from './lan/blob-data.ts'

const MiB = 1 << 20

/** What `node` gets for `identity` with `upstream` (credentials and all): its sha256. */
async function fetchAs (node: ClusterTestNode, identity: BlobIdentity, upstream: UpstreamRequest): Promise<string> {
  const got = await node.fetcher.acquire(identity, upstream, { chunkSize: MiB, concurrency: 4 })
  if (got.kind !== 'blob') throw new Error(`expected a blob, got ${got.kind}`)
  try {
    const hash = createHash('sha256')
    for await (const chunk of got.open(0, got.meta.size as number)) hash.update(chunk as Buffer)
    return hash.digest('hex')
  } finally {
    got.release()
  }
}

async function fetchWith (node: ClusterTestNode, hex: string, upstream: UpstreamRequest): Promise<string> {
  return await fetchAs(node, digestIdentity({ algorithm: 'sha256', hex }), upstream)
}

/** Members a and b (b's downloads take members as sources; a's stay upstream only: what it holds is what is asked of it). */
async function startPair (cluster: Partial<ClusterConfig> = {}): Promise<[ClusterTestNode, ClusterTestNode]> {
  const a = await startClusterNode(cluster)
  const b = await startClusterNode({ ...cluster, peers: [a.addr], lookup_ms: 2000 })
  await until(() => b.cluster.running?.membership.memberIds().length === 1, 20_000, 'membership')
  b.fetcher.useSources(b.cluster)
  return [a, b]
}

/**
 * An upstream that serves `data` (with Range) only to `Authorization: Bearer alice`, each answer after
 * `latencyMs`; 401 otherwise.
 */
async function gatedUpstream (data: Buffer, latencyMs = 0): Promise<{ url: string, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.headers.authorization !== 'Bearer alice') { res.writeHead(401, { 'content-length': 0 }); res.end(); return }
    setTimeout(() => { answer(req, res) }, latencyMs)
  })
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    const start = m === null ? 0 : Number(m[1])
    const end = m === null || m[2] === '' ? data.length : Math.min(data.length, Number(m[2]) + 1)
    const headers = { 'content-length': end - start, etag: '"gated"', 'accept-ranges': 'bytes' }
    if (m === null) res.writeHead(200, headers)
    else res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end - 1}/${data.length}` })
    res.end(data.subarray(start, end))
  }
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/gated.bin`,
    close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) }
  }
}

/** A blob made of `size` bytes (`seed`) behind a new upstream, `gated` or open, closed with `closing`. */
async function served (closing: Array<{ close: () => Promise<void> }>, gated: boolean, size: number, seed: number, latencyMs = 0): Promise<{ data: Buffer, hex: string, upstream: { url: string } }> {
  const data = blobData(size, seed)
  const upstream = gated ? await gatedUpstream(data, latencyMs) : await startFileUpstream(data)
  closing.push(upstream)
  return { data, hex: createHash('sha256').update(data).digest('hex'), upstream }
}

/**
 * A blob fetched with a client's credentials (its headers, or a registry login the node holds for it)
 * is that client's: no member gets a ticket for it until the upstream gave it to a request without them
 * (asked at once when the credentials are headers it can leave out; else when a client without
 * credentials asks).
 */
describe('blobs fetched with credentials, in an open cluster', () => {
  let a: ClusterTestNode
  let b: ClusterTestNode
  const closing: Array<{ close: () => Promise<void> }> = []

  beforeAll(async () => {
    [a, b] = await startPair()
  }, 60_000)

  afterAll(async () => {
    await b?.stop()
    await a?.stop()
    for (const c of closing) await c.close()
  })

  const ticketFor = async (hex: string): Promise<number> => {
    const peers = b.cluster.running?.peers
    if (peers === undefined) throw new Error('no cluster')
    return (await peers.ticket(a.peerId, hex)).size
  }

  it('private upstream: no member gets it', async () => {
    const { hex, upstream } = await served(closing, true, 2 * MiB + 7, 90)
    expect(await fetchWith(a, hex, { url: new URL(upstream.url), headers: { authorization: 'Bearer alice' } })).toBe(hex)
    await until(async () => await a.store.hasDigest(hex), 20_000, 'commit')
    // Long enough for the check without credentials to have come back (with a 401).
    await new Promise(resolve => setTimeout(resolve, 500))
    await expect(ticketFor(hex)).rejects.toThrow()
  }, 60_000)

  it('private upstream, still downloading: a member asking is told nothing of it', async () => {
    const { hex, upstream } = await served(closing, true, 2 * MiB + 10, 93, 1500)
    const fetching = fetchWith(a, hex, { url: new URL(upstream.url), headers: { authorization: 'Bearer alice' } })
    await until(() => a.fetcher.activeDownloads().some(d => d.key === `sha256:${hex}`), 5_000, 'download under way')
    const control = b.cluster.running?.control
    if (control === undefined) throw new Error('no cluster')
    expect((await control.have(a.peerId, `sha256:${hex}`)).state).toBe('none')
    expect(await fetching).toBe(hex)
  }, 60_000)

  it('public upstream fetched with an Authorization header: members get it once the upstream gave it without', async () => {
    const { data, hex, upstream } = await served(closing, false, 2 * MiB + 8, 91)
    expect(await fetchWith(a, hex, { url: new URL(upstream.url), headers: { authorization: 'Bearer alice' } })).toBe(hex)
    await until(async () => await ticketFor(hex).then(() => true, () => false), 10_000, 'shared')
    expect(await ticketFor(hex)).toBe(data.length)
  }, 60_000)

  it('a request with credentials takes a public blob from a member (checked against its digest)', async () => {
    const { data, hex, upstream } = await served(closing, false, 2 * MiB + 11, 94)
    expect(await fetchWith(a, hex, { url: new URL(upstream.url) })).toBe(hex)
    await until(async () => await a.store.hasDigest(hex), 20_000, 'commit')
    const before = b.store.stats().bytes_from_peers
    expect(await fetchWith(b, hex, { url: new URL(upstream.url), headers: { authorization: 'Bearer bob' } })).toBe(hex)
    expect(b.store.stats().bytes_from_peers - before).toBeGreaterThanOrEqual(data.length - 256 * 1024)
  }, 60_000)

  it('a registry login held by the node: no member gets it until a client without credentials was let have it', async () => {
    const { data, hex, upstream } = await served(closing, false, 2 * MiB + 9, 92)
    const url = new URL(upstream.url)
    expect(await fetchWith(a, hex, { url, credential: 'alice-key' })).toBe(hex)
    await until(async () => await a.store.hasDigest(hex), 20_000, 'commit')
    await new Promise(resolve => setTimeout(resolve, 500))
    await expect(ticketFor(hex)).rejects.toThrow()
    expect(await fetchWith(a, hex, { url })).toBe(hex)
    expect(await ticketFor(hex)).toBe(data.length)
  }, 60_000)
})

/**
 * A keyed cluster shares files named by their URL. One fetched with credentials is offered by that URL
 * once the upstream gave the same file (its size) to a request without them.
 */
describe('a file named by its URL, fetched with credentials, in a keyed cluster', () => {
  let dir: string
  let a: ClusterTestNode
  let b: ClusterTestNode
  const closing: Array<{ close: () => Promise<void> }> = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aimirror-keys-'))
    ;[a, b] = await startPair({ key_file: await writeKeyFile(dir) })
  }, 60_000)

  afterAll(async () => {
    await b?.stop()
    await a?.stop()
    for (const c of closing) await c.close()
    await rm(dir, { recursive: true, force: true })
  })

  const fetchUrl = async (node: ClusterTestNode, url: URL, headers: Record<string, string>): Promise<string> => await fetchAs(node, urlIdentity(url), { url, headers })

  it('public upstream: offered by its URL once the upstream gave it without credentials', async () => {
    const { hex, upstream } = await served(closing, false, 3 * MiB + 1, 95)
    const url = new URL(upstream.url)
    expect(await fetchUrl(a, url, { authorization: 'Bearer alice' })).toBe(hex)
    await until(async () => (await a.store.index.getKey(urlIdentity(url).key))?.shareable === true, 10_000, 'shared by its key')
    const before = b.store.stats().bytes_from_peers
    expect(await fetchUrl(b, url, {})).toBe(hex)
    expect(b.store.stats().bytes_from_peers - before).toBeGreaterThan(2 * MiB)
  }, 60_000)

  it('private upstream: its key stays the client\'s', async () => {
    const { hex, upstream } = await served(closing, true, 2 * MiB + 2, 96)
    const url = new URL(upstream.url)
    expect(await fetchUrl(a, url, { authorization: 'Bearer alice' })).toBe(hex)
    await until(async () => await a.store.hasDigest(hex), 20_000, 'commit')
    await new Promise(resolve => setTimeout(resolve, 500))
    expect((await a.store.index.getKey(urlIdentity(url).key))?.shareable).toBe(false)
  }, 60_000)
})
