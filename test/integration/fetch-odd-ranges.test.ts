import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { GeneratedContent, generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { closedAfterEach, makeRig, sha256Of } from './fetch-helpers.ts'

const SIZE = 3 * 1024 * 1024 + 5
const track = closedAfterEach()

/** An upstream whose 206 answers do not say the file's size: `bytes a-b/*` (RFC 9110 allows it) or no Content-Range. */
function oddRanges (totals: 'star' | 'none') {
  const content = new GeneratedContent(SIZE, 60)
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const range = /bytes=(\d+)-(\d+)?/.exec(req.headers.range ?? '')
    const s = range === null ? 0 : Number(range[1])
    const e = range === null ? SIZE - 1 : Math.min(SIZE - 1, range[2] === undefined ? SIZE - 1 : Number(range[2]))
    const headers: Record<string, string> = { 'accept-ranges': 'bytes', 'content-length': String(e - s + 1), etag: '"odd"' }
    if (range !== null && totals === 'star') headers['content-range'] = `bytes ${s}-${e}/*`
    res.writeHead(range === null ? 200 : 206, headers)
    res.end(req.method === 'HEAD' ? undefined : content.read(s, e - s + 1))
    return true
  }
}

describe('an upstream whose range answers do not give the file size', () => {
  for (const totals of ['star', 'none'] as const) {
    it(`${totals === 'star' ? 'Content-Range bytes a-b/*' : '206 without Content-Range'}: the file comes whole in one GET`, async () => {
      const server = track(await startFileServer({ files: {}, onRequest: oddRanges(totals) }))
      const rig = track(await makeRig())
      const url = new URL(server.url + '/odd.bin')
      const a = await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 1 << 20, concurrency: 4 })
      if (a.kind !== 'blob') throw new Error(`expected a blob, got ${a.kind}`)
      expect(a.meta.size).toBe(SIZE)
      expect((await sha256Of(a.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 60))
      a.release()
    }, 20_000)
  }
})
