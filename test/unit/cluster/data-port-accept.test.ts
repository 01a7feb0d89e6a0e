import { fork } from 'node:child_process'
import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DataServer } from '../../../node/cluster/data-server.ts'
import type { PieceLists } from '../../../node/cluster/piece-lists.ts'
import type { BlobStore } from '../../../node/store/blob-store.ts'

const CONNECTIONS = 16

/** A client in another process: says it is ready, then opens CONNECTIONS fresh connections at once and reports when all were answered. */
const CLIENT = `
const http = require('node:http')
process.on('message', ({ port }) => {
  let done = 0
  for (let i = 0; i < ${CONNECTIONS}; i++) {
    http.get({ host: '127.0.0.1', port, path: '/v1/blobs/' + 'a'.repeat(64), agent: false }, res => {
      res.resume()
      res.on('end', () => { if (++done === ${CONNECTIONS}) process.send({ status: res.statusCode }) })
    })
  }
})
process.send({ ready: true })
`

function dataServer (port = 0): DataServer {
  return new DataServer({ store: {} as BlobStore, pieceLists: {} as PieceLists, logger: pino({ level: 'silent' }) }, { host: '127.0.0.1', port, ticketSecret: new Uint8Array(32) })
}

describe('data port: accepting connections on a busy node', () => {
  let dir: string
  let server: DataServer

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aimirror-accept-'))
    await writeFile(join(dir, 'client.cjs'), CLIENT)
    server = dataServer()
    await server.start()
  })

  afterAll(async () => {
    await server.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('takes many new connections per event-loop turn, not one', async () => {
    const child = fork(join(dir, 'client.cjs'))
    try {
      await new Promise(resolve => child.once('message', resolve))
      const answered = new Promise<{ status: number }>(resolve => child.once('message', m => resolve(m as { status: number })))
      let finished = false
      void answered.then(() => { finished = true })
      child.send({ port: server.port })
      // The loop is busy from now on, 50 ms of work a turn, while the connections come in.
      let turns = 0
      while (!finished && turns < 200) {
        const t = Date.now()
        while (Date.now() - t < 50) { /* busy */ }
        await new Promise(resolve => setImmediate(resolve))
        turns++
      }
      expect((await answered).status).toBe(401)
      // One listening socket accepts one connection a turn: at least CONNECTIONS turns.
      expect(turns).toBeLessThan(CONNECTIONS * 0.75)
    } finally {
      child.kill()
    }
  })

  it('a port another server holds is refused, not shared', async () => {
    const other = dataServer(server.port)
    await expect(other.start()).rejects.toMatchObject({ code: 'EADDRINUSE' })
  })
})
