import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { gateConnections, isLoopback } from '../../../node/http/connection-gate.ts'
import { kept, openFrom } from '../../helpers/connections.ts'

describe('the connection gate', () => {
  it('hangs up on connections past the bound per address, and past the bound in all', async () => {
    const held = new Set<Socket>()
    const server = createServer(s => { held.add(s); s.on('close', () => held.delete(s)) })
    // Every address bounded here (the loopback addresses stand in for LAN hosts).
    gateConnections(server, { total: 10, perAddress: 4 }, () => false)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    const sockets: Socket[] = []
    try {
      sockets.push(...await openFrom(port, '127.0.0.2', 6))
      sockets.push(...await openFrom(port, '127.0.0.3', 3))
      sockets.push(...await openFrom(port, '127.0.0.4', 5))
      await new Promise(resolve => setTimeout(resolve, 200))
      const from = (a: string): number => kept(sockets.filter(s => s.localAddress === a))
      expect([from('127.0.0.2'), from('127.0.0.3'), from('127.0.0.4')]).toEqual([4, 3, 3])
      expect(held.size).toBe(10)
      // A slot freed by one host is another's.
      for (const s of sockets.filter(s => s.localAddress === '127.0.0.3')) s.destroy()
      await new Promise(resolve => setTimeout(resolve, 200))
      sockets.push(...await openFrom(port, '127.0.0.5', 3))
      await new Promise(resolve => setTimeout(resolve, 200))
      expect(from('127.0.0.5')).toBe(3)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise(resolve => server.close(resolve))
    }
  })

  it('leaves loopback addresses out of the per-address bound by default', () => {
    expect(['127.0.0.1', '127.3.0.9', '::1', '::ffff:127.0.0.1'].map(isLoopback)).toEqual([true, true, true, true])
    expect(['10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', '128.0.0.1'].map(isLoopback)).toEqual([false, false, false, false])
  })
})
