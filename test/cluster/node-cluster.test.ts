import { hostname } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatsView, PeersView } from '../../node/cluster/view.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { p2pAddr, until } from './helpers.ts'

describe('cluster inside the node: /cluster/stats and /peers', () => {
  let a: TestNode
  let b: TestNode
  let plain: TestNode

  beforeAll(async () => {
    a = await startTestNode({ rules: [], cluster: { enabled: true } })
    b = await startTestNode({ rules: [], cluster: { enabled: true, peers: [p2pAddr(a)] } })
    plain = await startTestNode({ rules: [] })
  }, 60_000)

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop(), plain?.stop()])
  })

  it('mDNS is off for test nodes even when the cluster is on', () => {
    expect(a.config.cluster.mdns).toBe(false)
    expect(a.config.cluster.listen).toEqual(['/ip4/127.0.0.1/tcp/0'])
  })

  it('every reachable node reports its numbers, with totals', async () => {
    await until(async () => {
      const res = await fetch(`${a.url}/cluster/stats`)
      const body = await res.json() as ClusterStatsView
      return body.totals.reachable === 2
    }, 20_000, 'two reachable nodes')
    const view = await (await fetch(`${b.url}/cluster/stats`)).json() as ClusterStatsView
    expect(view.enabled).toBe(true)
    expect(view.mode).toBe('open')
    expect(view.nodes[0]?.self).toBe(true)
    expect(view.nodes.map(n => n.peer_id).sort()).toEqual([a, b].map(n => n.node.components.cluster?.running?.libp2p.peerId.toString()).sort())
    expect(view.totals).toMatchObject({ nodes: 2, reachable: 2, bytes_saved_upstream: 0 })
    // Each node names its machine, the remote one too (through the stats request).
    expect(view.nodes.map(n => n.host)).toEqual([hostname(), hostname()])
  })

  it('/metrics counts the member it is connected to', async () => {
    let text = ''
    await until(async () => /^aimirror_cluster_members 1$/m.test(text = await (await fetch(`${a.url}/metrics`)).text()), 20_000, 'one member in /metrics')
    expect(text).toMatch(/^aimirror_bytes_to_peers_total 0$/m)
  })

  it('/peers lists the connected member', async () => {
    const view = await (await fetch(`${a.url}/peers`)).json() as PeersView
    const bId = b.node.components.cluster?.running?.libp2p.peerId.toString()
    expect(view.self?.peer_id).toBe(a.node.components.cluster?.running?.libp2p.peerId.toString())
    expect(view.peers.find(p => p.peer_id === bId)).toMatchObject({ member: true, banned: false })
  })

  it('stopping the node closes the cluster: no libp2p or data port left listening', async () => {
    const c = await startTestNode({ rules: [], cluster: { enabled: true } })
    const running = c.node.components.cluster?.running
    const ports = [running?.data.port, Number(p2pAddr(c).split('/')[4])]
    await c.stop()
    for (const port of ports) {
      const refused = await fetch(`http://127.0.0.1:${String(port)}/`).then(() => false, () => true)
      expect(refused, `port ${String(port)}`).toBe(true)
    }
    expect(c.node.components.cluster?.running).toBe(null)
  })

  it('with the cluster off, the views show this node alone', async () => {
    expect(plain.node.components.cluster).toBe(null)
    const view = await (await fetch(`${plain.url}/cluster/stats`)).json() as ClusterStatsView
    expect(view).toMatchObject({ enabled: false, totals: { nodes: 1 } })
    expect(await (await fetch(`${plain.url}/peers`)).json()).toEqual({ enabled: false, self: null, peers: [] })
  })
})
