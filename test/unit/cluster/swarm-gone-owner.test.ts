import { PassThrough } from 'node:stream'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { Bans } from '../../../node/cluster/bans.ts'
import { ownerOf, SHARE_UNIT } from '../../../node/cluster/ownership.ts'
import type { PeerClient, PeerTicket } from '../../../node/cluster/peer-client.ts'
import type { Holder } from '../../../node/cluster/routing.ts'
import { PeerLeftError, SwarmSource } from '../../../node/cluster/swarm-source.ts'
import type { Source, SourceResponse } from '../../../node/fetch/upstream-source.ts'

const SIZE = 64 * SHARE_UNIT
const SELF = 'self'
const GONE = 'gone-peer'
const ALIVE = 'alive-peer'
const NAME = 'a'.repeat(64)

/** A unit the gone peer owns among all three downloaders, and the alive one once the gone one is left out. */
function unitOwnedByGone (): number {
  for (let u = 0; u < 64; u++) {
    if (ownerOf(u, [SELF, GONE, ALIVE]) === GONE && ownerOf(u, [SELF, ALIVE]) === ALIVE) return u
  }
  throw new Error('no such unit')
}

function response (start: number, end: number, body = new PassThrough()): SourceResponse {
  return {
    status: 206,
    headers: { 'content-range': `bytes ${start}-${end}/${SIZE}` },
    body: body as unknown as SourceResponse['body'],
    url: new URL('http://peer.invalid/'),
    contentRange: { start, end, total: SIZE }
  }
}

interface Fakes {
  source: SwarmSource
  upstreamAsks: number
  /** Peer in-flight reads asked, in order. */
  peerAsks: string[]
  alive: Map<string, boolean>
  members: Set<string>
  bodies: Map<string, PassThrough>
}

/** A SwarmSource whose download has begun, with two other members downloading the same blob. */
function swarmWith (fetchInFlight: (peer: string, start: number, end: number) => Promise<SourceResponse>): Fakes {
  const f: Fakes = { source: undefined as unknown as SwarmSource, upstreamAsks: 0, peerAsks: [], alive: new Map([[GONE, true], [ALIVE, true]]), members: new Set([GONE, ALIVE]), bodies: new Map() }
  const ticket = (peer: string): PeerTicket => ({
    t: 'ticket', ticket: 'x', port: 1, expiresAt: Date.now() + 60_000, size: SIZE, complete: false,
    meta: { contentType: null, etag: null, lastModified: null, headers: {} }, peer, name: NAME, digest: NAME, base: 'http://peer.invalid'
  })
  const peers = {
    ticket: async (peer: string) => ticket(peer),
    fetchInFlight: async (t: PeerTicket, start: number, end: number) => {
      f.peerAsks.push(t.peer)
      return await fetchInFlight(t.peer, start, end)
    },
    forget: () => {},
    forgetTicket: () => {}
  } as unknown as PeerClient
  const upstream: Source = {
    name: 'upstream',
    fetch: async (range) => {
      f.upstreamAsks++
      const r = range ?? { start: 0, end: SIZE - 1 }
      return response(r.start, r.end)
    }
  }
  const partial = (peer: string): Holder => ({ peer, answer: { t: 'have', state: 'partial', size: SIZE } })
  f.source = new SwarmSource({
    peers,
    bans: new Bans(),
    lookup: async () => [...f.members].map(partial),
    logger: pino({ level: 'silent' }),
    self: SELF,
    isMember: peer => f.members.has(peer),
    alive: async peer => f.alive.get(peer) ?? false
  }, { name: NAME, upstream, lookupMs: 100, started: true })
  return f
}

describe('swarm: a downloader that died or froze', () => {
  const unit = unitOwnedByGone()
  const range = { start: unit * SHARE_UNIT, end: (unit + 1) * SHARE_UNIT - 1 }

  it('its unit goes to the next owner among those still there, not to this node\'s upstream', async () => {
    const f = swarmWith(async (peer, start, end) => {
      if (peer === GONE) {
        // Its process died: its data port refuses, and it no longer answers pings.
        f.alive.set(GONE, false)
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
      }
      return response(start, end)
    })
    const res = await f.source.fetch(range, {})
    expect(res.status).toBe(206)
    expect(f.peerAsks).toEqual([GONE, ALIVE])
    expect(f.upstreamAsks).toBe(0)
  })

  it('a busy owner that still answers pings keeps its share: that unit alone goes upstream', async () => {
    const f = swarmWith(async (peer, start, end) => {
      if (peer === GONE) throw Object.assign(new Error('read timed out'), { code: 'ERR_UPSTREAM_TIMEOUT' })
      return response(start, end)
    })
    await f.source.fetch(range, {})
    expect(f.peerAsks).toEqual([GONE])
    expect(f.upstreamAsks).toBe(1)
  })

  it('reads from a member that left are ended as a peer failure (asked again), not as an abort', async () => {
    const f = swarmWith(async (peer, start, end) => {
      const body = new PassThrough()
      f.bodies.set(peer, body)
      return response(start, end, body)
    })
    const res = await f.source.fetch(range, {})
    expect(f.peerAsks).toEqual([GONE])
    const failed = new Promise<unknown>(resolve => res.body.once('error', resolve))
    f.members.delete(GONE)
    f.source.memberLeft(GONE)
    expect(await failed).toBeInstanceOf(PeerLeftError)
    // The range is asked again: its unit has a new owner now.
    await f.source.fetch(range, {})
    expect(f.peerAsks).toEqual([GONE, ALIVE])
    expect(f.upstreamAsks).toBe(0)
  })

  it('a frozen owner (its reads went quiet and it misses a ping) loses its units to the others', async () => {
    const f = swarmWith(async (peer, start, end) => {
      const body = new PassThrough()
      f.bodies.set(peer, body)
      return response(start, end, body)
    })
    const stalled = await f.source.fetch(range, {})
    const failed = new Promise<unknown>(resolve => stalled.body.once('error', resolve))
    f.alive.set(GONE, false)
    // Nothing arrives from it for longer than the quiet time.
    await new Promise(resolve => setTimeout(resolve, 2100))
    const next = { start: range.start + SHARE_UNIT / 2, end: range.end }
    await f.source.fetch(next, {})
    expect(f.peerAsks).toEqual([GONE, ALIVE])
    expect(await failed).toBeInstanceOf(PeerLeftError)
    expect(f.upstreamAsks).toBe(0)
  })
})
