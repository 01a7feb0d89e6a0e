import { fork } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A client in another process: says it is ready, then opens `n` fresh connections at once and reports when all were answered. */
const CLIENT = `
const http = require('node:http')
process.on('message', ({ port, path, n }) => {
  let done = 0
  const statuses = []
  for (let i = 0; i < n; i++) {
    http.get({ host: '127.0.0.1', port, path, agent: false }, res => {
      res.resume()
      res.on('end', () => { statuses.push(res.statusCode); if (++done === n) process.send({ statuses }) })
    })
  }
})
process.send({ ready: true })
`

/**
 * Opens `n` new connections to `port` at once from another process while this process's event loop is
 * busy (50 ms of work a turn), and counts the turns until every one was answered. A server accepting
 * one connection a turn needs at least `n`.
 */
export async function turnsToAnswerBurst (port: number, path: string, n: number): Promise<{ turns: number, statuses: number[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-burst-'))
  await writeFile(join(dir, 'client.cjs'), CLIENT)
  const child = fork(join(dir, 'client.cjs'))
  try {
    await new Promise(resolve => child.once('message', resolve))
    const answered = new Promise<{ statuses: number[] }>(resolve => child.once('message', m => resolve(m as { statuses: number[] })))
    let finished = false
    void answered.then(() => { finished = true })
    child.send({ port, path, n })
    let turns = 0
    while (!finished && turns < 20 * n) {
      const t = Date.now()
      while (Date.now() - t < 50) { /* busy */ }
      await new Promise(resolve => setImmediate(resolve))
      turns++
    }
    return { turns, statuses: (await answered).statuses }
  } finally {
    child.kill()
    await rm(dir, { recursive: true, force: true })
  }
}
