import { createServer } from 'node:https'
import type { Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDataCert, PinMismatchError, pinnedAgent } from '../../../node/cluster/data-tls.ts'
import type { DataCert } from '../../../node/cluster/data-tls.ts'

async function serve (cert: DataCert): Promise<{ server: Server, hostPort: string }> {
  const server = createServer({ key: cert.key, cert: cert.cert }, (_req, res) => res.end('ok'))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, hostPort: `127.0.0.1:${(server.address() as AddressInfo).port}` }
}

describe('data port TLS: certificates pinned from tickets', () => {
  let mine: DataCert
  let other: DataCert
  let servers: Array<{ server: Server, hostPort: string }>

  beforeAll(async () => {
    mine = await createDataCert('node-a')
    other = await createDataCert('node-b')
    servers = [await serve(mine), await serve(other)]
  })

  afterAll(async () => {
    for (const { server } of servers) await new Promise<void>(resolve => server.close(() => resolve()))
  })

  it('makes a different certificate each time, named by its sha256', () => {
    expect(mine.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(mine.sha256).not.toBe(other.sha256)
  })

  it('connects only to a port presenting the pinned certificate, on every new connection', async () => {
    const a = servers[0] as { hostPort: string }
    const b = servers[1] as { hostPort: string }
    const pins = new Map([[a.hostPort, mine.sha256], [b.hostPort, mine.sha256]])
    // One connection per request, so each one is checked (a resumed TLS session shows no certificate).
    const agent = pinnedAgent(pins, { pipelining: 0, keepAliveTimeout: 1 })
    try {
      for (let i = 0; i < 3; i++) {
        const res = await agent.request({ origin: `https://${a.hostPort}`, path: '/', method: 'GET', reset: true })
        expect(await res.body.text()).toBe('ok')
      }
      await expect(agent.request({ origin: `https://${b.hostPort}`, path: '/', method: 'GET' })).rejects.toBeInstanceOf(PinMismatchError)
      pins.delete(a.hostPort)
      await expect(agent.request({ origin: `https://${a.hostPort}`, path: '/', method: 'GET', reset: true })).rejects.toBeInstanceOf(PinMismatchError)
    } finally {
      await agent.close()
    }
  })
})
