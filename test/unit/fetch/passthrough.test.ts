import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { openPassthrough, passthroughPlan } from '../../../node/fetch/passthrough.ts'
import type { Source, SourceFetchOptions, SourceResponse } from '../../../node/fetch/upstream-source.ts'

const data = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz')

function response (start: number, end: number, unverified = false): SourceResponse {
  return {
    status: 206,
    headers: {},
    body: Readable.from([data.subarray(start, end + 1)]) as unknown as SourceResponse['body'],
    url: new URL('http://up/'),
    contentRange: { start, end, total: data.length },
    unverified
  }
}

/** A source that records each ask and answers unverified bytes unless asked for verified ones (`honest`). */
function source (honest: boolean): { src: Source, asks: Array<{ start: number, verifiedOnly: boolean }> } {
  const asks: Array<{ start: number, verifiedOnly: boolean }> = []
  return {
    asks,
    src: {
      name: 'swarm',
      fetch: async (range, options: SourceFetchOptions) => {
        const r = range ?? { start: 0, end: data.length - 1 }
        asks.push({ start: r.start, verifiedOnly: options.verifiedOnly === true })
        return response(r.start, r.end, !(honest && options.verifiedOnly === true))
      }
    }
  }
}

async function text (stream: Readable): Promise<string> {
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(c as Buffer)
  return Buffer.concat(parts).toString()
}

describe('pass-through: no unvouched byte reaches the client (nothing checks the digest before the last one)', () => {
  it('asks its sources for verified bytes only, and drops a first response nobody vouched for', async () => {
    const { src, asks } = source(true)
    expect(await text(openPassthrough({ source: src, onBytes: () => {}, version: null }, response(0, 9, true), 0, data.length))).toBe(data.toString())
    expect(asks).toEqual([{ start: 0, verifiedOnly: true }])
  })

  it('drops a first response checked only against its sender\'s own word (an open cluster\'s member)', async () => {
    const { src, asks } = source(true)
    const first = { ...response(0, 9), needsDigest: true }
    expect(await text(openPassthrough({ source: src, onBytes: () => {}, version: null }, first, 0, data.length))).toBe(data.toString())
    expect(asks).toEqual([{ start: 0, verifiedOnly: true }])
  })

  it('a source that answers with unverified bytes anyway fails the stream before passing any of them', async () => {
    const { src } = source(false)
    const got: Buffer[] = []
    const stream = openPassthrough({ source: src, onBytes: () => {}, version: null }, null, 5, data.length)
    await expect((async () => { for await (const c of stream) got.push(c as Buffer) })()).rejects.toThrow(/unverified/)
    expect(got).toEqual([])
  })
})

const KiB = 1024
const MiB = 1024 * KiB

describe('passthroughPlan: connections and range size of a file passed through uncached', () => {
  it('one connection from an upstream without Range support', () => {
    expect(passthroughPlan(false, 64, 1)).toBeNull()
  })

  it('a nearby upstream: every connection of the rule (64 at most), in small ranges', () => {
    expect(passthroughPlan(true, 64, 2)).toEqual({ connections: 64, pieceSize: 128 * KiB })
    expect(passthroughPlan(true, 200, 2)).toEqual({ connections: 64, pieceSize: 128 * KiB })
    expect(passthroughPlan(true, 4, 2)).toEqual({ connections: 4, pieceSize: 128 * KiB })
  })

  it('a distant upstream keeps ranges large enough that a request\'s wait stays small: fewer connections, 16 MiB ahead at most', () => {
    expect(passthroughPlan(true, 64, 35)).toEqual({ connections: 32, pieceSize: 512 * KiB })
    expect(passthroughPlan(true, 64, 120)).toEqual({ connections: 16, pieceSize: MiB })
    expect(passthroughPlan(true, 64, undefined)).toEqual({ connections: 16, pieceSize: MiB })
  })

  it('ranges are whole units of the source\'s alignment (a peer verifies whole units)', () => {
    expect(passthroughPlan(true, 64, 2, MiB)).toEqual({ connections: 16, pieceSize: MiB })
    expect(passthroughPlan(true, 64, 2, 4 * MiB)).toEqual({ connections: 4, pieceSize: 4 * MiB })
  })
})
