import { Transform } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { digestIdentity } from '../../node/fetch/identity.ts'
import type { Source, SourceResponse, SuspectRange } from '../../node/fetch/upstream-source.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, makeRig, until } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 3 * MiB + 777
/** Bytes from here on come marked unverified (as from a peer's download still in flight). */
const FROM = MiB

/** Wraps the upstream: ranges at or after FROM are marked unverified, and optionally altered. */
class UnverifiedTail implements Source {
  readonly name = 'unverified-tail'
  mismatches = 0
  private readonly up: Source
  private readonly corrupt: boolean

  /** Responses asked for after the first digest mismatch are altered only when `corrupt` is 'always'. */
  private readonly always: boolean

  constructor (up: Source, corrupt: boolean | 'always') {
    this.up = up
    this.corrupt = corrupt !== false
    this.always = corrupt === 'always'
  }

  async fetch (range: { start: number, end: number } | null, options: { signal?: AbortSignal }): Promise<SourceResponse> {
    // Split at FROM so every response is wholly verified or wholly not (a shorter 206 is allowed).
    const r = range !== null && range.start < FROM && range.end >= FROM ? { start: range.start, end: FROM - 1 } : range
    // The body is piped below: volatile chunks (views into a reused buffer) would not survive that.
    const res = await this.up.fetch(r, { signal: options.signal })
    if (r === null || r.start < FROM) return res
    let flipped = !this.corrupt || (this.mismatches > 0 && !this.always)
    const body = res.body.pipe(new Transform({
      transform (chunk: Buffer, _enc, cb) {
        if (!flipped) { chunk = Buffer.from(chunk); chunk[0] = (chunk[0] ?? 0) ^ 0xff; flipped = true }
        cb(null, chunk)
      }
    }))
    return { ...res, body: body as unknown as SourceResponse['body'], unverified: true }
  }

  onDigestMismatch (): undefined { this.mismatches++ }
}

const track = closedAfterEach()

async function readAll (stream: NodeJS.ReadableStream): Promise<{ bytes: number, error: unknown }> {
  let bytes = 0
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).length
    return { bytes, error: null }
  } catch (error) {
    return { bytes, error }
  }
}

describe('bytes a source cannot vouch for', () => {
  const cases = {
    fine: 'reach clients once the whole blob is verified',
    once: 'are fetched again when the blob fails its digest (the source is told): the client gets the right blob as if nothing happened',
    always: 'never reach a client when the blob fails its digest again after that'
  } as const
  for (const [mode, title] of Object.entries(cases) as Array<[keyof typeof cases, string]>) {
    const corrupt = mode === 'fine' ? false : mode === 'once' ? true : 'always'
    it(title, async () => {
      const server = track(await startFileServer({ files: { '/f.bin': { size: SIZE, seed: 9 } }, perConnectionBps: 4 * MiB }))
      const rig = track(await makeRig())
      let source: UnverifiedTail | undefined
      rig.fetcher.useSources({ sourceFor: (_id, up) => { source = new UnverifiedTail(up, corrupt); return source } })
      const url = new URL(server.url + '/f.bin')
      const identity = digestIdentity({ algorithm: 'sha256', hex: generatedSha256(SIZE, 9) })
      const got = await rig.fetcher.acquire(identity, { url }, { chunkSize: 256 * 1024, concurrency: 4 })
      if (got.kind !== 'blob') throw new Error('expected a blob')
      const stream = got.open(0, SIZE)
      let beforeVerified = 0
      let verifiedSeen = false
      stream.on('data', (c: Buffer) => {
        const d = rig.fetcher.activeDownloads()[0]
        if (!verifiedSeen && (d === undefined || d.state === 'verified' || d.state === 'done')) verifiedSeen = true
        if (!verifiedSeen) beforeVerified += c.length
      })
      const result = await readAll(stream)
      got.release()
      // Before the digest check, a client gets nothing past the first unverified byte.
      expect(beforeVerified).toBeLessThanOrEqual(FROM)
      if (mode === 'always') {
        expect((result.error as { code?: string }).code).toBe('ERR_DIGEST_MISMATCH')
        expect(result.bytes).toBeLessThanOrEqual(FROM)
        expect(source?.mismatches).toBe(2)
        expect(rig.store.stats().file_count).toBe(0)
      } else {
        expect(result.error).toBeNull()
        expect(result.bytes).toBe(SIZE)
        expect(source?.mismatches).toBe(mode === 'once' ? 1 : 0)
        await until(() => rig.store.stats().file_count === 1)
        const cached = await rig.fetcher.acquire(identity, { url }, {})
        if (cached.kind !== 'blob') throw new Error('expected a blob')
        expect(cached.from).toBe('cache')
        cached.release()
      }
    })
  }
})

/** Two peers send unverified bytes: 'good' the blob's [FROM, BAD), 'bad' altered ones from BAD on (first pass only). */
const BAD = 2 * MiB
class TwoSenders implements Source {
  readonly name = 'two-senders'
  mismatches = 0
  readonly convicted: string[] = []
  private readonly delivered: SuspectRange[] = []
  private readonly up: Source

  constructor (up: Source) {
    this.up = up
  }

  async fetch (range: { start: number, end: number } | null, options: { signal?: AbortSignal }): Promise<SourceResponse> {
    let r = range
    for (const cut of [FROM, BAD]) if (r !== null && r.start < cut && r.end >= cut) r = { start: r.start, end: cut - 1 }
    const res = await this.up.fetch(r, { signal: options.signal })
    // After the mismatch the ranges come again from the upstream itself.
    if (r === null || r.start < FROM || this.mismatches > 0) return res
    const start = r.start
    const peer = start < BAD ? 'good' : 'bad'
    let flip = peer === 'bad'
    let sent = 0
    const body = res.body.pipe(new Transform({
      transform (chunk: Buffer, _enc, cb) {
        if (flip) { chunk = Buffer.from(chunk); chunk[0] = (chunk[0] ?? 0) ^ 0xff; flip = false }
        sent += chunk.length
        cb(null, chunk)
      }
    }))
    body.once('close', () => { if (sent > 0) this.delivered.push({ peer, start, end: start + sent }) })
    return { ...res, body: body as unknown as SourceResponse['body'], unverified: true }
  }

  onDigestMismatch (): SuspectRange[] {
    this.mismatches++
    return this.delivered.splice(0)
  }

  convict (peers: ReadonlySet<string>): void { this.convicted.push(...peers) }
}

describe('senders of bytes nobody vouched for, when the blob fails its digest', () => {
  it('only the one whose bytes were not the blob\'s is convicted; the client gets the right blob', async () => {
    const server = track(await startFileServer({ files: { '/t.bin': { size: SIZE, seed: 11 } }, perConnectionBps: 4 * MiB }))
    const rig = track(await makeRig())
    let source: TwoSenders | undefined
    rig.fetcher.useSources({ sourceFor: (_id, up) => { source = new TwoSenders(up); return source } })
    const identity = digestIdentity({ algorithm: 'sha256', hex: generatedSha256(SIZE, 11) })
    const got = await rig.fetcher.acquire(identity, { url: new URL(server.url + '/t.bin') }, { chunkSize: 256 * 1024, concurrency: 4 })
    if (got.kind !== 'blob') throw new Error('expected a blob')
    const result = await readAll(got.open(0, SIZE))
    got.release()
    expect(result.error).toBeNull()
    expect(result.bytes).toBe(SIZE)
    expect(source?.mismatches).toBe(1)
    await until(() => (source?.convicted.length ?? 0) > 0)
    expect(source?.convicted).toEqual(['bad'])
  })
})
