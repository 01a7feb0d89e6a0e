import { createSecretKey } from 'node:crypto'
import type { Socket } from 'node:net'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DataServer } from '../../../node/cluster/data-server.ts'
import type { PieceLists } from '../../../node/cluster/piece-lists.ts'
import type { BlobStore } from '../../../node/store/blob-store.ts'
import { turnsToAnswerBurst } from '../../helpers/accept-burst.ts'
import { kept, openFrom } from '../../helpers/connections.ts'

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

  it('holds at most 512 connections in all, counting every acceptor socket; several nodes on this machine are not held to the per-address bound', async () => {
    const sockets: Socket[] = []
    try {
      // 150 from one loopback address: past the per-address bound of a LAN host, all kept.
      sockets.push(...await openFrom(server.port, '127.0.0.1', 150))
      await new Promise(resolve => setTimeout(resolve, 300))
      expect(kept(sockets)).toBe(150)
      // Ten more hosts of 64 each: 790 connections asked for, past the 512 in all.
      for (let host = 2; host <= 11; host++) sockets.push(...await openFrom(server.port, `127.0.0.${host}`, 64))
      await new Promise(resolve => setTimeout(resolve, 500))
      expect(kept(sockets)).toBe(512)
      // Slots come back as connections close: a host turned away while all 512 were taken gets one now.
      for (const s of sockets.filter(s => s.localAddress === '127.0.0.2')) s.destroy()
      await new Promise(resolve => setTimeout(resolve, 200))
      const again = (await openFrom(server.port, '127.0.0.11', 1))[0] as Socket
      sockets.push(again)
      again.write(`GET /v1/blobs/${'a'.repeat(64)} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)
      const answer = await new Promise<string>(resolve => { let text = ''; again.on('data', (d: Buffer) => { text += d.toString() }); again.on('close', () => resolve(text)) })
      expect(answer).toMatch(/^HTTP\/1\.1 401/)
    } finally {
      for (const s of sockets) s.destroy()
    }
  })

  it('a port another server holds is refused, not shared', async () => {
    const other = dataServer(server.port)
    await expect(other.start()).rejects.toMatchObject({ code: 'EADDRINUSE' })
  })
})
