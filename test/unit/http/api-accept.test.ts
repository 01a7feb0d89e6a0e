import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestNode } from '../../helpers/node.ts'
import type { TestNode } from '../../helpers/node.ts'
import { turnsToAnswerBurst } from '../../helpers/accept-burst.ts'

const CONNECTIONS = 16

describe('API port: accepting connections on a busy node', () => {
  let node: TestNode

  beforeAll(async () => {
    node = await startTestNode({ rules: [] })
  })

  afterAll(async () => {
    await node.stop()
  })

  it('takes many new connections per event-loop turn, not one', async () => {
    const { turns, statuses } = await turnsToAnswerBurst(node.node.address().port, '/health', CONNECTIONS)
    expect(statuses).toEqual(Array(CONNECTIONS).fill(200))
    expect(turns).toBeLessThan(CONNECTIONS * 0.75)
  })

  it('a port another node holds is refused, not shared', async () => {
    const port = node.node.address().port
    const refused = await startTestNode({ rules: [], server: { port } }).then(() => null, (err: unknown) => err as Error)
    expect(refused).toMatchObject({ code: 'ERR_START', cause: { code: 'EADDRINUSE' } })
    expect(refused?.message).toContain(`:${port} (server.host, server.port): the address is already in use`)
  })
})
