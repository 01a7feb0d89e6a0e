import { randomBytes } from 'node:crypto'
import { pipeline, Transform } from 'node:stream'
import type { Readable } from 'node:stream'
import { afterEach, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import { fetchBlob, startHolderPair } from './helpers.ts'
import type { HolderPair } from './helpers.ts'

const MiB = 1 << 20
let pair: HolderPair | undefined

afterEach(async () => {
  await pair?.stop()
  pair = undefined
})

/**
 * Makes `pair.b`'s reads from its peers come through one link of `bps` (a laptop on Wi-Fi): every
 * response body of theirs is paced, all of them sharing the rate. Returns the bytes paced so far.
 */
function slowLink (p: HolderPair, bps: number): () => number {
  const peers = p.b.cluster.running?.peers as unknown as {
    requestRange: (...args: unknown[]) => Promise<{ res: { body: Readable } }>
    fetchRange: (t: unknown, list: unknown, start: number, end: number, options?: object) => Promise<unknown>
  }
  // Through undici's bodies (the engine's recycled-buffer reads are not streams to pace).
  const fetchRange = peers.fetchRange.bind(peers)
  peers.fetchRange = async (t, list, start, end, options = {}) => await fetchRange(t, list, start, end, { ...options, takesVolatile: false })
  const request = peers.requestRange.bind(peers)
  p.b.fetcher.useSources(p.b.cluster)
  let free = Date.now()
  let paced = 0
  peers.requestRange = async (...args) => {
    const out = await request(...args)
    const link = new Transform({
      transform (chunk: Buffer, _encoding, done) {
        const now = Date.now()
        free = Math.max(free, now) + chunk.length / bps * 1000
        paced += chunk.length
        setTimeout(() => { done(null, chunk) }, free - now)
      }
    })
    pipeline(out.res.body, link, () => {})
    return { ...out, res: { ...out.res, body: link } }
  }
  return () => paced
}

it('a member holding the blob that serves it slowly shares the download with the upstream, right bytes', async () => {
  const data = randomBytes(48 * MiB)
  pair = await startHolderPair(data)
  const fromPeer = slowLink(pair, 4 * MiB)
  const started = Date.now()
  const got = await fetchBlob(pair.b.fetcher, digestIdentity({ algorithm: 'sha256', hex: pair.digest }), pair.upstream.url)
  const ms = Date.now() - started
  expect(got.equals(data)).toBe(true)
  // The holder alone: 12 s. It is judged after 3 s; the upstream (on loopback) brings the rest.
  expect(fromPeer()).toBeGreaterThan(4 * MiB)
  expect(pair.upstream.bytes).toBeGreaterThan(8 * MiB)
  expect(ms).toBeLessThan(9000)
}, 30_000)

it('a member holding the blob that serves it fast serves all of it: the upstream sends nothing', async () => {
  const data = randomBytes(48 * MiB)
  pair = await startHolderPair(data)
  const fromPeer = slowLink(pair, 256 * MiB)
  const got = await fetchBlob(pair.b.fetcher, digestIdentity({ algorithm: 'sha256', hex: pair.digest }), pair.upstream.url)
  expect(got.equals(data)).toBe(true)
  expect(fromPeer()).toBeGreaterThanOrEqual(data.length)
  expect(pair.upstream.bytes).toBe(0)
}, 30_000)
