import { createSecretKey } from 'node:crypto'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DataServer } from '../../../node/cluster/data-server.ts'
import type { PieceLists } from '../../../node/cluster/piece-lists.ts'
import type { BlobStore } from '../../../node/store/blob-store.ts'
import { turnsToAnswerBurst } from '../../helpers/accept-burst.ts'

const CONNECTIONS = 16

function dataServer (port = 0): DataServer {
  return new DataServer({ store: {} as BlobStore, pieceLists: {} as PieceLists, logger: pino({ level: 'silent' }) }, { host: '127.0.0.1', port, ticketSecret: createSecretKey(new Uint8Array(32)) })
}

describe('data port: accepting connections on a busy node', () => {
  let server: DataServer

  beforeAll(async () => {
    server = dataServer()
    await server.start()
  })

  afterAll(async () => {
    await server.stop()
  })

  it('takes many new connections per event-loop turn, not one', async () => {
    const { turns, statuses } = await turnsToAnswerBurst(server.port, `/v1/blobs/${'a'.repeat(64)}`, CONNECTIONS)
    expect(statuses).toEqual(Array(CONNECTIONS).fill(401))
    // One listening socket accepts one connection a turn: at least CONNECTIONS turns.
    expect(turns).toBeLessThan(CONNECTIONS * 0.75)
  })

  it('a port another server holds is refused, not shared', async () => {
    const other = dataServer(server.port)
    await expect(other.start()).rejects.toMatchObject({ code: 'EADDRINUSE' })
  })
})
