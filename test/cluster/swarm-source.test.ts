import { connect } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SwarmSource } from '../../node/cluster/swarm-source.ts'
import { PeerCorruptError } from '../../node/cluster/verifying-body.ts'
import type { Source } from '../../node/fetch/upstream-source.ts'
import { readAll, startClusterNode, startHolderPair, until } from './helpers.ts'
import type { ClusterTestNode, CountingUpstream, HolderPair } from './helpers.ts'

describe('swarm source: ranges from a peer, verified, upstream as fallback', () => {
  const MiB = 1 << 20
  const data = randomBytes(3 * MiB + 12345)
  let pair: HolderPair
  let a: ClusterTestNode
  let b: ClusterTestNode
  let upstream: CountingUpstream
  let digest: string

  beforeAll(async () => {
    pair = await startHolderPair(data, { contentType: 'application/x-test' })
    ;({ a, b, upstream, digest } = pair)
  }, 60_000)

  afterAll(async () => {
    await pair.stop()
  })

  const swarm = (node: ClusterTestNode, hex: string): Source => pair.swarm(node, hex)

  it('takes every range from the peer holding the blob, none from upstream', async () => {
    const src = swarm(b, digest)
    expect(src).toBeInstanceOf(SwarmSource)
    const first = await src.fetch({ start: 0, end: 4 * MiB - 1 }, {})
    expect(first.status).toBe(206)
    expect(first.contentRange).toEqual({ start: 0, end: data.length - 1, total: data.length })
    expect(first.headers['content-type']).toBe('application/x-test')
    expect(first.headers.etag).toBe(`"${digest}"`)
    expect((await readAll(first.body)).equals(data)).toBe(true)

    const mid = await src.fetch({ start: MiB + 5, end: 2 * MiB + 100 }, {})
    expect(mid.headers.etag).toBeUndefined()
    expect((await readAll(mid.body)).equals(data.subarray(MiB + 5, 2 * MiB + 101))).toBe(true)
    expect(upstream.bytes).toBe(0)
    // A holder on the LAN is served by a few connections, not the rule's concurrency.
    expect(src.rangesInFlight?.(64)).toBe(8)
    expect(b.cluster.localStats().bytes_from_peers).toBe(data.length + MiB + 96)
    expect(a.cluster.localStats().bytes_to_peers).toBeGreaterThanOrEqual(data.length)
  })

  it('keeps the piece list the download made: units a holder\'s verified bytes filled are not hashed again', async () => {
    const src = swarm(b, digest)
    // Unit 0 comes whole from a, verified against a's list; unit 1 only in part.
    await readAll((await src.fetch({ start: 0, end: MiB - 1 }, {})).body)
    await readAll((await src.fetch({ start: MiB + 10, end: 2 * MiB - 1 }, {})).body)
    // The bytes the download hashes, here zeros: the list takes a's hash for unit 0 and hashes the rest.
    const zeros = Buffer.alloc(data.length)
    src.inOrder?.update(zeros)
    src.inOrder?.verified(digest)
    const path = join(b.dir, 'cluster', 'pieces', digest)
    await until(async () => (await readFile(path).catch(() => null)) !== null, 10_000, 'list kept')
    const list = await readFile(path)
    const unit = (buf: Buffer, i: number): Buffer => createHash('sha256').update(buf.subarray(i * MiB, (i + 1) * MiB)).digest()
    expect(list.length).toBe(4 * 32)
    expect(list.subarray(0, 32).equals(unit(data, 0))).toBe(true)
    for (let i = 1; i < 4; i++) expect(list.subarray(i * 32, (i + 1) * 32).equals(unit(zeros, i))).toBe(true)
    await rm(path)
    // A list is kept only for the digest the download verified.
    const wrong = swarm(b, digest)
    await readAll((await wrong.fetch({ start: 0, end: MiB - 1 }, {})).body)
    wrong.inOrder?.update(zeros)
    wrong.inOrder?.verified('2'.repeat(64))
    // A blob no other member takes part in: its list is left to after the commit.
    const alone = swarm(b, '3'.repeat(64))
    alone.inOrder?.update(zeros)
    alone.inOrder?.verified('3'.repeat(64))
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(existsSync(path)).toBe(false)
    expect(existsSync(join(b.dir, 'cluster', 'pieces', '3'.repeat(64)))).toBe(false)
  })

  it('goes upstream at once when no member has the blob', async () => {
    const other = randomBytes(1000)
    const hex = (await import('node:crypto')).createHash('sha256').update(other).digest('hex')
    const before = upstream.requests
    const started = Date.now()
    const src = swarm(b, hex)
    const res = await src.fetch({ start: 0, end: 999 }, {})
    await readAll(res.body)
    expect(upstream.requests).toBe(before + 1)
    expect(src.rangesInFlight?.(64)).toBe(64)
    // All members said no: no waiting for the lookup budget (5 s here).
    expect(Date.now() - started).toBeLessThan(2500)
  })

  it('the data port gives nothing without a ticket for that blob and address', async () => {
    const port = a.cluster.running?.data.port as number
    const none = await request(`http://127.0.0.1:${port}/v1/blobs/${digest}`)
    await none.body.dump()
    expect(none.statusCode).toBe(401)
    const forged = await request(`http://127.0.0.1:${port}/v1/blobs/${digest}`, { headers: { authorization: 'Bearer v1.e30.AAAA' } })
    expect(forged.statusCode).toBe(401)
    expect(await forged.body.json()).toEqual({ error: 'BAD_TICKET' })
    const ticket = await b.cluster.running?.peers.ticket(a.peerId, digest)
    const wrongBlob = await request(`http://127.0.0.1:${port}/v1/blobs/${'0'.repeat(64)}`, { headers: { authorization: `Bearer ${ticket?.ticket ?? ''}` } })
    await wrongBlob.body.dump()
    expect(wrongBlob.statusCode).toBe(401)
    // A target that is no URL at all is a bad request, not an internal error.
    const garbage = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => { socket.end('GET //[/ HTTP/1.1\r\nHost: x\r\n\r\n') })
      let got = ''
      socket.on('data', (c: Buffer) => { got += c.toString() })
      socket.on('close', () => { resolve(got) })
      socket.on('error', reject)
    })
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /)
  })

  it('a peer serving corrupt bytes is caught within a piece, banned, and upstream takes over', async () => {
    const c = await startClusterNode({ peers: [a.addr], lookup_ms: 5000 })
    try {
      await until(() => c.cluster.running?.membership.isMember(a.peerId) === true, 20_000, 'membership')
      // A faulty holder: its piece list (made by B's request) rots on disk, so what it serves no longer
      // matches what it claims; C must catch it at piece 2 without passing a bad byte on.
      const ticket = await b.cluster.running?.peers.ticket(a.peerId, digest)
      if (ticket === undefined) throw new Error('no cluster')
      expect((await b.cluster.running?.peers.pieceList(ticket))?.length).toBe(4 * 32)
      const path = join(a.dir, 'cluster', 'pieces', digest)
      const fh = await open(path, 'r+')
      await fh.write(Buffer.alloc(32, 0), 0, 32, 2 * 32)
      await fh.close()

      const src = swarm(c, digest)
      const res = await src.fetch({ start: 0, end: data.length - 1 }, {})
      const err = await readAll(res.body).then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(PeerCorruptError)
      expect((err as PeerCorruptError).piece).toBe(2)
      expect(c.cluster.bans.isBanned(a.peerId)).toBe(true)
      // a was told: its blob still matches its digest, so it keeps it and makes the list again.
      const good = createHash('sha256').update(data.subarray(2 * MiB, 3 * MiB)).digest()
      await until(async () => (await readFile(path).catch(() => Buffer.alloc(0))).subarray(2 * 32, 3 * 32).equals(good), 20_000, 'list made again')
      expect(await a.store.hasDigest(digest)).toBe(true)
      const before = upstream.bytes
      const again = await src.fetch({ start: 2 * MiB, end: data.length - 1 }, {})
      // The upstream may answer a shorter 206 (a young download's requests come in 1 MiB steps).
      expect(again.contentRange?.start).toBe(2 * MiB)
      const end = (again.contentRange?.end ?? 0) + 1
      expect(end).toBeGreaterThan(2 * MiB)
      expect((await readAll(again.body)).equals(data.subarray(2 * MiB, end))).toBe(true)
      expect(upstream.bytes - before).toBe(end - 2 * MiB)
    } finally {
      await c.stop()
    }
  }, 60_000)
})
