import { pino } from 'pino'
import { it } from 'vitest'
import { Fetcher } from '../../node/fetch/fetcher.ts'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, until } from './fetch-helpers.ts'

const track = closedAfterEach()

it('an upstream that stalls (headers, some bytes, then nothing, on every request) is said at warn level', async () => {
  const size = 1 << 20
  const server = track(await startFileServer({ files: { '/s.bin': { size, seed: 3 } }, faults: { stallAfterBytes: 50_000 } }))
  const rig = track(await makeRig())
  const lines: Array<{ level: number, msg: string }> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
  await rig.fetcher.stop()
  rig.fetcher = new Fetcher({ store: rig.store, dispatcher: rig.agent, sockets: rig.sockets ?? undefined, logger }, { retryBaseMs: 20, bodyTimeoutMs: 300, headersTimeoutMs: 300, maxRetries: 2 })
  const got = await rig.fetcher.acquire(digestIdentity({ algorithm: 'sha256', hex: generatedSha256(size, 3) }), { url: new URL(`${server.url}/s.bin`) }, { chunkSize: 0, concurrency: 1 })
  if (got.kind !== 'blob') throw new Error('expected a blob')
  // Each retry brings 50 000 bytes more: the download goes on (slowly), and the warning comes meanwhile.
  const reading = (async () => { for await (const chunk of got.open(0, size)) void chunk })().catch(() => {})
  await until(() => lines.some(l => l.level === 40 && /stalls/.test(l.msg)), 20_000)
  got.release()
  await rig.fetcher.stop()
  await reading
}, 30_000)
