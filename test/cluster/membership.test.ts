import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { WireError } from '../../protocol/errors.ts'
import { freePort } from '../fixtures/upstreams/oci-distribution.ts'
import { clusterStats } from '../../node/cluster/view.ts'
import { startClusterNode, until, writeKeyFile } from './helpers.ts'
import type { ClusterTestNode } from './helpers.ts'
import type { Logger } from '../../node/log.ts'

describe('cluster membership (static peers on 127.0.0.1)', () => {
  let keys: string
  let keyFile: string
  const nodes: ClusterTestNode[] = []

  beforeAll(async () => {
    keys = await mkdtemp(join(tmpdir(), 'aimirror-keys-'))
    keyFile = await writeKeyFile(keys)
  }, 60_000)

  afterAll(async () => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await rm(keys, { recursive: true, force: true })
  })

  async function node (extra: Parameters<typeof startClusterNode>[0], logger?: Logger, init?: Parameters<typeof startClusterNode>[2]): Promise<ClusterTestNode> {
    const n = await startClusterNode(extra, logger, init)
    nodes.push(n)
    return n
  }

  it('nodes holding the key join; others are refused and get nothing', async () => {
    const lines: Array<{ level: number, msg: string, peer?: string, why?: string, addr?: string }> = []
    const a = await node({ key_file: keyFile }, pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } }))
    const b = await node({ key_file: keyFile, peers: [a.addr] })
    const c = await node({ key_file: keyFile, peers: [a.addr.replace(/\/p2p\/.*$/, '')] })
    const members = (n: ClusterTestNode): string[] => n.cluster.running?.membership.memberIds() ?? []
    await until(() => members(a).length === 2 && members(b).includes(a.peerId) && members(c).includes(a.peerId), 20_000, 'members')
    expect(members(a).sort()).toEqual([b.peerId, c.peerId].sort())

    const stats = await b.cluster.running?.control.stats(a.peerId)
    expect(stats?.peer_id).toBe(a.peerId)

    const stranger = await node({ key_file: await writeKeyFile(keys), peers: [a.addr] })
    const open = await node({ peers: [a.addr] })
    await until(() => a.cluster.running?.membership.isRefused(stranger.peerId) === true && a.cluster.running?.membership.isRefused(open.peerId) === true, 20_000, 'refusals')
    expect(members(a)).not.toContain(stranger.peerId)
    expect(members(stranger)).toEqual([])
    const refused = await stranger.cluster.running?.control.stats(a.peerId).then(() => null, (err: unknown) => err)
    expect(refused).toBeInstanceOf(Error)
    if (refused instanceof WireError) expect(refused.code).toBe('NOT_MEMBER')
    // Each said once at warn, in words (both sides challenge each other: the second refusal is no news).
    await new Promise(resolve => setTimeout(resolve, 1000))
    const warned = lines.filter(l => l.level === 40 && l.msg === 'peer refused: not a member of this cluster')
    expect(warned.map(l => l.peer).sort()).toEqual([stranger.peerId, open.peerId].sort())
    expect(warned.find(l => l.peer === open.peerId)?.why).toMatch(/open cluster "test", this node in the keyed cluster "test"/)
    expect(warned.find(l => l.peer === stranger.peerId)?.why).toMatch(/cluster key/)
    for (const l of warned) expect(l.addr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
  }, 60_000)

  it('nodes chained by their configs (each names the one before) are all members of each other within moments', async () => {
    // c names b, which is not up yet: c's first look at the DHT finds nobody, and once c reaches b
    // only a new look learns of a (the DHT's own next one is 5 minutes away).
    const port = await freePort()
    const a = await node({ key_file: keyFile })
    const c = await node({ key_file: keyFile, peers: [`/ip4/127.0.0.1/tcp/${port}`] })
    await new Promise(resolve => setTimeout(resolve, 1500))
    const b = await node({ key_file: keyFile, listen: [`/ip4/127.0.0.1/tcp/${port}`], peers: [a.addr] })
    const members = (n: ClusterTestNode): string[] => n.cluster.running?.membership.memberIds() ?? []
    await until(() => members(c).includes(b.peerId) && members(b).includes(a.peerId), 20_000, 'c and a members of b')
    const t0 = performance.now()
    await until(() => members(a).includes(c.peerId) && members(c).includes(a.peerId), 20_000, 'a and c members of each other')
    expect(performance.now() - t0).toBeLessThan(3000)
  }, 60_000)

  it('a member that left is listed by the cluster view as unreachable, until it comes back', async () => {
    const a = await node({ key_file: keyFile })
    const b = await startClusterNode({ key_file: keyFile, peers: [a.addr] })
    await until(() => a.cluster.running?.membership.isMember(b.peerId) === true, 20_000, 'b a member')
    expect((await clusterStats(a.cluster)).nodes.find(n => n.peer_id === b.peerId)?.reachable).toBe(true)
    try {
      await b.cluster.stop()
      await until(() => a.cluster.running?.membership.isMember(b.peerId) === false, 20_000, 'b gone')
      const view = await clusterStats(a.cluster)
      const gone = view.nodes.find(n => n.peer_id === b.peerId)
      expect(gone).toMatchObject({ reachable: false, error: 'left' })
      expect(Date.parse(gone?.left_at ?? '')).toBeGreaterThan(Date.now() - 20_000)
      expect(gone?.address).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
      expect(view.totals.nodes - view.totals.reachable).toBeGreaterThanOrEqual(1)
      // Back (same identity): listed once, reachable.
      await b.cluster.start()
      await until(() => a.cluster.running?.membership.isMember(b.peerId) === true, 20_000, 'b back')
      const back = (await clusterStats(a.cluster)).nodes.filter(n => n.peer_id === b.peerId)
      expect(back).toHaveLength(1)
      expect(back[0]?.reachable).toBe(true)
    } finally {
      await b.stop()
    }
  }, 60_000)

  it('a refused peer is dialed again once its refusal ends: one that came back with the cluster key joins', async () => {
    const a = await node({ key_file: keyFile }, undefined, { refusalMs: 2000 })
    // b, with another key, dials a (its static peer): each refuses the other.
    const b = await node({ key_file: await writeKeyFile(keys), peers: [a.addr] }, undefined, { refusalMs: 2000 })
    await until(() => a.cluster.running?.membership.isRefused(b.peerId) === true, 20_000, 'refused')
    // b comes back with the key, on the same address and identity, and no static peers: nobody dials
    // it but a, which knows it from before (mDNS would not report it again: libp2p knows it).
    await b.cluster.stop()
    Object.assign(b.cluster.config, { key_file: keyFile, peers: [], listen: [b.addr.replace(/\/p2p\/.*$/, '')] })
    await b.cluster.start()
    await until(() => a.cluster.running?.membership.isMember(b.peerId) === true, 20_000, 'b a member of a')
  }, 40_000)

  it('a bare libp2p peer that never becomes a member is hung up on', async () => {
    const a = await node({ key_file: keyFile }, undefined, { strangerGraceMs: 500 })
    const bare = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    try {
      await bare.dial(multiaddr(a.addr))
      expect(bare.getConnections().length).toBe(1)
      await until(() => bare.getConnections().length === 0, 10_000, 'hung up')
    } finally {
      await bare.stop()
    }
  }, 30_000)

  it('raw connections held open without a handshake do not keep a member out', async () => {
    const a = await node({ key_file: keyFile })
    const port = Number(a.addr.split('/')[4])
    // From another loopback address (libp2p limits new connections per address and second): 12, more
    // than libp2p's default room for connections still in their handshake.
    const held: Socket[] = []
    for (let i = 0; i < 12; i++) {
      held.push(connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }).on('error', () => {}))
      if (i % 4 === 3) await new Promise(resolve => setTimeout(resolve, 1100))
    }
    try {
      const b = await node({ key_file: keyFile, peers: [a.addr] })
      // Else it joins once the first of them are dropped: 10 s after they connected.
      await until(() => a.cluster.running?.membership.isMember(b.peerId) === true, 5_000, 'b joined')
    } finally {
      for (const s of held) s.destroy()
    }
  }, 30_000)

  it('the peer identity survives a restart', async () => {
    const a = await startClusterNode({})
    const first = a.peerId
    await a.cluster.stop()
    await a.cluster.start()
    expect(a.cluster.running?.libp2p.peerId.toString()).toBe(first)
    await a.stop()
  })
})
