import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ClusterLibp2p } from '../../../node/cluster/libp2p-node.ts'
import { StaticPeers } from '../../../node/cluster/static-peers.ts'

afterEach(() => { vi.useRealTimers() })

describe('static peers', () => {
  it('one that cannot be reached is reported once at warn, naming the field, and still tried', async () => {
    vi.useFakeTimers()
    const lines: Array<{ level: number, msg: string, addr?: string }> = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
    let dials = 0
    const libp2p = {
      getConnections: () => [],
      dial: async () => { dials++; throw new Error('connect ECONNREFUSED 10.0.0.9:4001') }
    } as unknown as ClusterLibp2p
    const peers = new StaticPeers({ libp2p, logger }, { peers: ['10.0.0.9:4001'] })
    peers.start()
    try {
      await vi.advanceTimersByTimeAsync(60_000)
    } finally {
      peers.stop()
    }
    const warned = lines.filter(l => l.level === 40)
    expect(warned).toHaveLength(1)
    expect(warned[0]?.msg).toMatch(/static peer not reachable \(cluster\.peers\)/)
    expect(warned[0]?.addr).toBe('/ip4/10.0.0.9/tcp/4001')
    expect(dials).toBeGreaterThan(3)
  })
})
