import { PassThrough, Readable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it, vi } from 'vitest'
import { Bans } from '../../../node/cluster/bans.ts'
import { ownerOf, SHARE_UNIT } from '../../../node/cluster/ownership.ts'
import type { PeerClient, PeerTicket } from '../../../node/cluster/peer-client.ts'
import type { Holder } from '../../../node/cluster/routing.ts'
import { PeerLeftError, SwarmSource } from '../../../node/cluster/swarm-source.ts'
import type { SwarmSourceComponents } from '../../../node/cluster/swarm-source.ts'
import type { Source, SourceResponse } from '../../../node/fetch/upstream-source.ts'
import { WireError } from '../../../protocol/errors.ts'
import type { HaveAnswer } from '../../../protocol/messages.ts'

const MiB = 1 << 20
const SIZE = 64 * MiB
const DIGEST = 'ab'.repeat(32)

function response (start: number, end: number, from: string, body: Readable = Readable.from([])): SourceResponse {
  return {
    status: 206,
    headers: { 'x-from': from },
    body: body as unknown as SourceResponse['body'],
    url: new URL(`http://${from}/`),
    contentRange: { start, end, total: SIZE }
  }
}

/**
 * A swarm source with two other members downloading the blob, fake peers that record which of them a
 * range was asked of, and an upstream that records what it was asked.
 */
function ticketOf (peer: string, complete = false): PeerTicket {
  return { t: 'ticket', ticket: 't', port: 1, expiresAt: Date.now() + 60_000, size: SIZE, complete, meta: { contentType: null, etag: null, lastModified: null, headers: {} }, peer, name: DIGEST, digest: DIGEST, base: 'http://x' }
}

/** `answering`: which members answer looks (default: those that answer pings). */
function swarm (answers: Record<string, HaveAnswer>, fakes: Partial<Record<keyof PeerClient, unknown>> = {}, members: Pick<SwarmSourceComponents, 'isMember' | 'alive'> & { answering?: (peer: string) => boolean } = {}, bans = new Bans(), p2Now?: () => HaveAnswer): { source: SwarmSource, asked: string[] } {
  const asked: string[] = []
  const peers = {
    ticket: async (peer: string): Promise<PeerTicket> => ticketOf(peer),
    fetchInFlight: async (t: PeerTicket, start: number, end: number): Promise<SourceResponse> => {
      asked.push(`${t.peer} ${start}-${end}`)
      return response(start, end, t.peer)
    },
    pieceList: async () => Buffer.alloc(32 * SIZE / MiB),
    fetchRange: async (t: PeerTicket, _list: Buffer, start: number, end: number): Promise<SourceResponse> => {
      asked.push(`holder ${t.peer} ${start}-${end}`)
      return response(start, end, t.peer)
    },
    forget: () => {},
    forgetTicket: () => {},
    ...fakes
  } as unknown as PeerClient
  const upstream: Source = {
    name: 'upstream',
    fetch: async (range) => {
      asked.push(`upstream ${range?.start ?? 0}-${range?.end ?? SIZE - 1}`)
      return response(range?.start ?? 0, range?.end ?? SIZE - 1, 'upstream')
    }
  }
  const holders: Holder[] = Object.entries(answers).map(([peer, answer]) => ({ peer, answer }))
  const source = new SwarmSource({
    peers,
    bans,
    // By default a member that no longer answers pings (died, froze) does not answer looks either.
    lookup: async () => {
      const now = p2Now === undefined ? holders : holders.map(h => h.peer === 'p2' ? { peer: 'p2', answer: p2Now() } : h)
      const { alive, answering } = members
      if (answering !== undefined) return now.filter(h => answering(h.peer))
      if (alive === undefined) return now
      const live = await Promise.all(now.map(async h => await alive(h.peer, () => false)))
      return now.filter((_, i) => live[i])
    },
    logger: pino({ level: 'silent' }),
    self: 'self',
    ...members
  }, { name: DIGEST, upstream, lookupMs: 100 })
  return { source, asked }
}

describe('swarm source: who serves a range of a blob others are downloading', () => {
  const empty = Buffer.alloc(1).toString('base64')
  const partial = (extra: Partial<HaveAnswer> = {}): HaveAnswer => ({ t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: empty, ...extra })

  it('a member that has the bytes on disk serves them, whoever owns the unit', async () => {
    // Pick a unit "self" owns among the three, so without the written ranges it would go upstream.
    const unit = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'self') as number
    const at = unit * SHARE_UNIT
    const { source, asked } = swarm({ p1: partial(), p2: partial({ written: [[at - MiB, at + 2 * MiB]] }) })
    // The first response is the client's first bytes: it never waits on a peer's routing.
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    const res = await source.fetch({ start: at, end: at + SHARE_UNIT - 1 })
    expect(asked).toEqual([`p2 ${at}-${at + 2 * MiB - 1}`])
    expect(res.contentRange).toEqual({ start: at, end: at + 2 * MiB - 1, total: SIZE })
  })

  it('without that, the unit\'s owner (here this node) takes it from the upstream', async () => {
    const unit = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'self') as number
    const at = unit * SHARE_UNIT
    const { source, asked } = swarm({ p1: partial(), p2: partial() })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch({ start: at, end: at + SHARE_UNIT - 1 })
    expect(asked).toHaveLength(1)
    expect(asked[0]).toMatch(new RegExp(`^upstream ${at}-`))
  })

  it('a piece of the rule\'s size that runs into a unit another member owns goes upstream only to its own unit\'s end', async () => {
    const units = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i)
    const unit = units.find(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'self' && ownerOf(i + 1, ['self', 'p1']) === 'p1') as number
    const at = unit * SHARE_UNIT + MiB
    const { source, asked } = swarm({ p1: partial() })
    await source.fetch({ start: 0, end: MiB - 1 })
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now() + 3000)
      asked.length = 0
      // A 5 MiB piece (the seed's chunk_size) from 1 MiB into this node's unit.
      const res = await source.fetch({ start: at, end: at + 5 * MiB - 1 })
      expect(asked).toEqual([`upstream ${at}-${(unit + 1) * SHARE_UNIT - 1}`])
      expect(res.contentRange?.end).toBe((unit + 1) * SHARE_UNIT - 1)
      // The rest is asked again and goes to the next unit's owner.
      asked.length = 0
      await source.fetch({ start: (unit + 1) * SHARE_UNIT, end: at + 5 * MiB - 1 })
      expect(asked).toEqual([`p1 ${(unit + 1) * SHARE_UNIT}-${at + 5 * MiB - 1}`])
    } finally {
      vi.useRealTimers()
    }
    // Alone, the piece goes upstream whole.
    const alone = swarm({})
    await alone.source.fetch({ start: 0, end: MiB - 1 })
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now() + 3000)
      alone.asked.length = 0
      await alone.source.fetch({ start: at, end: at + 5 * MiB - 1 })
      expect(alone.asked).toEqual([`upstream ${at}-${at + 5 * MiB - 1}`])
    } finally {
      vi.useRealTimers()
    }
  })

  it('an owner that stops serving its download in flight because it is committing the blob is read as a holder, not replaced by the upstream', async () => {
    const unit = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'p1') as number
    const at = unit * SHARE_UNIT
    let tickets = 0
    const { source, asked } = swarm({ p1: partial() }, {
      // The download is gone; the committed blob shows up in the third ticket.
      fetchInFlight: async () => { throw new WireError('NOT_FOUND') },
      ticket: async (peer: string) => ticketOf(peer, ++tickets >= 3)
    })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch({ start: at, end: at + MiB - 1 })
    expect(asked).toEqual([`holder p1 ${at}-${at + MiB - 1}`])
  })

  it('one that never commits it leaves that range to the upstream', async () => {
    const unit = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'p1') as number
    const at = unit * SHARE_UNIT
    const { source, asked } = swarm({ p1: partial() }, { fetchInFlight: async () => { throw new WireError('NOT_FOUND') } })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch({ start: at, end: at + MiB - 1 })
    expect(asked).toEqual([`upstream ${at}-${at + MiB - 1}`])
  })

  it('one with no download of the blob (its own went no further) hands that unit to the next owner among the others', async () => {
    const units = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i)
    const unit = units.find(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'p1' && ownerOf(i, ['self', 'p2']) === 'p2') as number
    const at = unit * SHARE_UNIT
    const { source, asked } = swarm({ p1: partial(), p2: partial() }, {
      fetchInFlight: async (t: PeerTicket, start: number, end: number) => {
        asked.push(`${t.peer} ${start}-${end}`)
        if (t.peer === 'p1') throw new WireError('NOT_FOUND')
        return response(start, end, t.peer)
      }
    })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch({ start: at, end: at + MiB - 1 })
    expect(asked).toEqual([`p1 ${at}-${at + MiB - 1}`, `p2 ${at}-${at + MiB - 1}`])
  })

  it('a broken stream to a downloader sends that range upstream but keeps its share; a refusal ends its part', async () => {
    const units = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).filter(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'p1')
    const [u1, u2] = units.map(u => u * SHARE_UNIT) as [number, number]
    for (const [err, second] of [[new Error('Cannot write to a stream that is closed'), 'p1'], [new WireError('NOT_MEMBER'), 'upstream']] as const) {
      let tickets = 0
      const { source, asked } = swarm({ p1: partial() }, {
        ticket: async (peer: string) => { if (++tickets === 1) throw err; return ticketOf(peer) }
      })
      // The first range never waits on a peer: it is the client's first bytes.
      await source.fetch({ start: 0, end: MiB - 1 })
      asked.length = 0
      await source.fetch({ start: u1, end: u1 + MiB - 1 })
      await source.fetch({ start: u2, end: u2 + MiB - 1 })
      expect(asked).toEqual([`upstream ${u1}-${u1 + MiB - 1}`, `${second} ${u2}-${u2 + MiB - 1}`])
    }
  })

  it('a unit whose read failed goes upstream, unless another downloader has the range', async () => {
    const unit = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'p1') as number
    const at = unit * SHARE_UNIT
    let p2 = partial()
    let tickets = 0
    const { source, asked } = swarm({ p1: partial(), p2: partial() }, {
      ticket: async (peer: string) => { if (peer === 'p1' && ++tickets === 1) throw new Error('Cannot write to a stream that is closed'); return ticketOf(peer) }
    }, {}, new Bans(), () => p2)
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch({ start: at, end: at + MiB - 1 })
    expect(asked).toEqual([`upstream ${at}-${at + MiB - 1}`])
    // p2 fetched the rest of that unit meanwhile; the next look at the members shows it.
    p2 = partial({ written: [[at + MiB, at + SHARE_UNIT]] })
    // The view looks at the members again in the background as ranges are asked.
    await new Promise(resolve => setTimeout(resolve, 600))
    await source.fetch({ start: MiB, end: 2 * MiB - 1 })
    await new Promise(resolve => setTimeout(resolve, 100))
    asked.length = 0
    await source.fetch({ start: at + 2 * MiB, end: at + 3 * MiB - 1 })
    expect(asked).toEqual([`p2 ${at + 2 * MiB}-${at + 3 * MiB - 1}`])
  })

  it('a member that asks about the blob is downloading it: its units go to it at once, before any refresh', async () => {
    const unit = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'p1') as number
    const at = unit * SHARE_UNIT
    const { source, asked } = swarm({})
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch({ start: at, end: at + MiB - 1 })
    expect(asked[0]).toMatch(/^upstream /)
    asked.length = 0
    source.heardFrom('p1')
    // This node's own id is never a downloader.
    source.heardFrom('self')
    await source.fetch({ start: at + MiB, end: at + 2 * MiB - 1 })
    expect(asked).toEqual([`p1 ${at + MiB}-${at + 2 * MiB - 1}`])
  })
})

describe('swarm source: a downloader that died or froze', () => {
  const empty = Buffer.alloc(1).toString('base64')
  const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: empty }
  /** A unit p1 owns among the three downloaders, and p2 once p1 is left out. */
  const at = SHARE_UNIT * (Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i)
    .find(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'p1' && ownerOf(i, ['self', 'p2']) === 'p2') as number)
  const unit = { start: at, end: at + SHARE_UNIT - 1 }

  /** p1 and p2 download the blob; a read from a peer meets `fails(peer)` (null: it serves); pings reach those `alive` says. */
  function reads (fails: (peer: string) => Error | null, alive: (peer: string) => boolean): ReturnType<typeof swarm> {
    const s: ReturnType<typeof swarm> = swarm({ p1: partial, p2: partial }, {
      fetchInFlight: async (t: PeerTicket, start: number, end: number) => {
        s.asked.push(`${t.peer} ${start}-${end}`)
        const err = fails(t.peer)
        if (err !== null) throw err
        return response(start, end, t.peer)
      }
    }, { alive: async peer => alive(peer) })
    return s
  }

  it('its unit goes to the next owner among those still there, not to this node\'s upstream', async () => {
    const alive = new Set(['p1', 'p2'])
    // Its process died: its data port refuses, and it no longer answers pings.
    const { source, asked } = reads(peer => {
      if (peer !== 'p1') return null
      alive.delete('p1')
      return Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    }, peer => alive.has(peer))
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch(unit)
    expect(asked).toEqual([`p1 ${unit.start}-${unit.end}`, `p2 ${unit.start}-${unit.end}`])
  })

  it('one left out for a missed ping that asks about the blob again is back: its unit is its own again', async () => {
    const alive = new Set(['p1', 'p2'])
    const { source, asked } = reads(peer => alive.has(peer) ? null : Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), peer => alive.has(peer))
    await source.fetch({ start: 0, end: MiB - 1 })
    // Frozen: its reads hang up and it misses the ping, though the cluster has not dropped it yet.
    alive.delete('p1')
    asked.length = 0
    await source.fetch(unit)
    expect(asked).toEqual([`p1 ${unit.start}-${unit.end}`, `p2 ${unit.start}-${unit.end}`])
    // Back: it asks this node about the blob, as a download does.
    alive.add('p1')
    source.heardFrom('p1')
    asked.length = 0
    await source.fetch({ start: unit.start + MiB, end: unit.end })
    expect(asked).toEqual([`p1 ${unit.start + MiB}-${unit.end}`])
  })

  it('a busy owner that still answers pings keeps its share: that unit alone goes upstream', async () => {
    const { source, asked } = reads(peer => peer === 'p1' ? Object.assign(new Error('read timed out'), { code: 'ERR_UPSTREAM_TIMEOUT' }) : null, () => true)
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch(unit)
    expect(asked).toHaveLength(2)
    expect(asked[0]).toBe(`p1 ${unit.start}-${unit.end}`)
    // (A young download asks the upstream in short steps.)
    expect(asked[1]).toMatch(new RegExp(`^upstream ${unit.start}-`))
  })

  /** Reads whose bodies stay open until the test ends them. */
  const openReads = (asked: string[]): Partial<Record<keyof PeerClient, unknown>> => ({
    fetchInFlight: async (t: PeerTicket, start: number, end: number) => {
      asked.push(`${t.peer} ${start}-${end}`)
      return response(start, end, t.peer, new PassThrough())
    }
  })

  it('reads from a member that left are ended as a peer failure (asked again), not as an abort', async () => {
    const members = new Set(['p1', 'p2'])
    const asked: string[] = []
    const { source } = swarm({ p1: partial, p2: partial }, openReads(asked), { isMember: peer => members.has(peer) })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    const res = await source.fetch(unit)
    const failed = new Promise<unknown>(resolve => res.body.once('error', resolve))
    members.delete('p1')
    source.memberLeft('p1')
    expect(await failed).toBeInstanceOf(PeerLeftError)
    // The range is asked again: its unit has a new owner now.
    await source.fetch(unit)
    expect(asked).toEqual([`p1 ${unit.start}-${unit.end}`, `p2 ${unit.start}-${unit.end}`])
  })

  it('an owner whose ping times out but that goes on answering looks is slow, not gone: it keeps its units', async () => {
    const asked: string[] = []
    // p1's pings time out (a loaded machine); its answer only stands when it was heard from meanwhile.
    const { source } = swarm({ p1: partial, p2: partial }, openReads(asked), { alive: async (peer, heardRecently) => peer !== 'p1' || heardRecently(), answering: () => true })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch(unit)
    // Nothing arrives from it for longer than the quiet time, while it answers the view's looks.
    await new Promise(resolve => setTimeout(resolve, 2100))
    await source.fetch({ start: unit.start + MiB, end: unit.end })
    expect(asked).toEqual([`p1 ${unit.start}-${unit.end}`, `p1 ${unit.start + MiB}-${unit.end}`])
  })

  it('the others that finished meanwhile serve its unit as holders, not the upstream', async () => {
    const alive = new Set(['p1', 'p2'])
    let p2: HaveAnswer = partial
    const s: ReturnType<typeof swarm> = swarm({ p1: partial, p2: partial }, {
      fetchInFlight: async (t: PeerTicket, start: number, end: number) => {
        s.asked.push(`${t.peer} ${start}-${end}`)
        if (t.peer !== 'p1') return response(start, end, t.peer)
        // p1 died as p2 committed the blob; the view's next look (while this read fails) sees p2 whole.
        alive.delete('p1')
        p2 = { t: 'have', state: 'complete', size: SIZE }
        await new Promise(resolve => setTimeout(resolve, 1200))
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
      },
      ticket: async (peer: string): Promise<PeerTicket> => ticketOf(peer, peer === 'p2' && p2.state === 'complete')
    }, { alive: async peer => alive.has(peer) }, new Bans(), () => p2)
    await s.source.fetch({ start: 0, end: MiB - 1 })
    s.asked.length = 0
    await s.source.fetch(unit)
    expect(s.asked).toEqual([`p1 ${unit.start}-${unit.end}`, `holder p2 ${unit.start}-${unit.end}`])
  })

  it('a frozen owner (its reads went quiet and it misses a ping) loses its units to the others', async () => {
    const alive = new Set(['p1', 'p2'])
    const asked: string[] = []
    const { source } = swarm({ p1: partial, p2: partial }, openReads(asked), { alive: async peer => alive.has(peer) })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    const stalled = await source.fetch(unit)
    const failed = new Promise<unknown>(resolve => stalled.body.once('error', resolve))
    alive.delete('p1')
    // Nothing arrives from it for longer than the quiet time.
    await new Promise(resolve => setTimeout(resolve, 2100))
    await source.fetch({ start: unit.start + MiB, end: unit.end })
    expect(asked).toEqual([`p1 ${unit.start}-${unit.end}`, `p2 ${unit.start + MiB}-${unit.end}`])
    expect(await failed).toBeInstanceOf(PeerLeftError)
  })
})

describe('swarm source: a downloader that froze while new ranges kept going to it', () => {
  const empty = Buffer.alloc(1).toString('base64')
  const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: empty }
  const units = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i)
    .filter(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'p1' && ownerOf(i, ['self', 'p2']) === 'p2')
    .map(i => ({ start: i * SHARE_UNIT, end: (i + 1) * SHARE_UNIT - 1 }))

  it('one silent read is enough for a ping, however fresh the others; after a while it is considered again', async () => {
    const alive = new Set(['p1', 'p2'])
    const members = new Set(['p1', 'p2'])
    const asked: string[] = []
    const { source } = swarm({ p1: partial, p2: partial }, {
      fetchInFlight: async (t: PeerTicket, start: number, end: number) => {
        asked.push(t.peer)
        return response(start, end, t.peer, new PassThrough())
      }
    }, { alive: async peer => alive.has(peer), isMember: peer => members.has(peer) })
    const [u1, u2, u3] = units as [typeof units[0], typeof units[0], typeof units[0]]
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch(u1)
    await new Promise(resolve => setTimeout(resolve, 2100))
    // Still answering pings: a fresh read goes to it.
    await source.fetch(u2)
    alive.delete('p1')
    // Past the ping's freshness: the old silent read makes it be pinged again, despite the fresh one.
    await new Promise(resolve => setTimeout(resolve, 1100))
    await source.fetch(u3)
    expect(asked).toEqual(['p1', 'p1', 'p2'])
    // Back (it was only frozen): after the time a gone peer is left out, its units are its own again.
    alive.add('p1')
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now() + 11_000)
      await source.fetch(units[3] ?? u3)
      expect(asked.at(-1)).toBe('p1')
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('swarm source: members lost and back', () => {
  const empty = Buffer.alloc(1).toString('base64')
  const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: empty }
  const own = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).filter(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'self')
  const p1s = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).filter(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'p1')

  it('one found gone is its units\' owner again once it rejoins; upstream asks stay short just after a loss', async () => {
    const alive = new Set(['p1'])
    const { source, asked } = swarm({ p1: partial }, {
      fetchInFlight: async (t: PeerTicket, start: number, end: number) => {
        asked.push(`${t.peer} ${start}-${end}`)
        if (!alive.has(t.peer)) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
        return response(start, end, t.peer)
      }
    }, { alive: async peer => alive.has(peer) })
    const theirs = (p1s[0] as number) * SHARE_UNIT
    const mine = (own[0] as number) * SHARE_UNIT
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      await source.fetch({ start: 0, end: MiB - 1 })
      // Past the young download's short steps: this node's own unit goes upstream whole.
      vi.setSystemTime(Date.now() + 3000)
      asked.length = 0
      await source.fetch({ start: mine, end: mine + SHARE_UNIT - 1 })
      expect(asked).toEqual([`upstream ${mine}-${mine + SHARE_UNIT - 1}`])
      // p1 stops answering: its unit comes from the upstream, in a short step (it may be back soon).
      alive.delete('p1')
      asked.length = 0
      await source.fetch({ start: theirs, end: theirs + SHARE_UNIT - 1 })
      expect(asked).toEqual([`p1 ${theirs}-${theirs + SHARE_UNIT - 1}`, `upstream ${theirs}-${theirs + MiB - 1}`])
      // It rejoins the cluster: its units are its own again at once, not after the time it was left out for.
      alive.add('p1')
      source.memberJoined('p1')
      asked.length = 0
      await source.fetch({ start: theirs + MiB, end: theirs + SHARE_UNIT - 1 })
      expect(asked).toEqual([`p1 ${theirs + MiB}-${theirs + SHARE_UNIT - 1}`])
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('swarm source: the piece size it asks for', () => {
  it('is the cluster\'s unit when members hold or download the blob, the engine\'s own when only the upstream has it', async () => {
    const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: Buffer.alloc(1).toString('base64') }
    const alone = swarm({})
    await alone.source.fetch({ start: 0, end: MiB - 1 })
    expect(alone.source.maxAutoPiece()).toBeUndefined()
    const shared = swarm({ p1: partial })
    await shared.source.fetch({ start: 0, end: MiB - 1 })
    expect(shared.source.maxAutoPiece()).toBe(SHARE_UNIT)
    const held = swarm({ p1: { t: 'have', state: 'complete', size: SIZE } })
    await held.source.fetch({ start: 0, end: MiB - 1 })
    expect(held.source.maxAutoPiece()).toBe(SHARE_UNIT)
  })
})

describe('swarm source: a member rejoins', () => {
  it('the view asks the members again at once, not at its next periodic look', async () => {
    const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: Buffer.alloc(1).toString('base64') }
    let lookups = 0
    const source = new SwarmSource({
      peers: { ticket: async (peer: string) => ticketOf(peer), fetchInFlight: async (t: PeerTicket, s: number, e: number) => response(s, e, t.peer), forget: () => {}, forgetTicket: () => {} } as unknown as PeerClient,
      bans: new Bans(),
      lookup: async () => { lookups++; return [{ peer: 'p1', answer: partial }] },
      logger: pino({ level: 'silent' }),
      self: 'self'
    }, { name: DIGEST, upstream: { name: 'upstream', fetch: async (r) => response(r?.start ?? 0, r?.end ?? SIZE - 1, 'upstream') }, lookupMs: 100, refreshMs: 60_000 })
    source.memberJoined('p1')
    expect(lookups).toBe(0)
    await source.fetch({ start: 0, end: MiB - 1 })
    await source.fetch({ start: MiB, end: 2 * MiB - 1 })
    await new Promise(resolve => setTimeout(resolve, 50))
    const before = lookups
    source.memberJoined('p1')
    expect(lookups).toBe(before + 1)
  })
})

describe('swarm source: this node back from a pause', () => {
  const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: Buffer.alloc(1).toString('base64') }
  const p1s = Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).filter(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'p1')
  const theirs = (p1s[0] as number) * SHARE_UNIT

  function paused (rejoinWaitMs: number): { source: SwarmSource, asked: string[], members: Set<string>, back: { at: number }, p1: { answer: HaveAnswer } } {
    const members = new Set(['p1'])
    const back = { at: 0 }
    const p1 = { answer: partial }
    const asked: string[] = []
    const source = new SwarmSource({
      peers: {
        ticket: async (peer: string) => ticketOf(peer),
        fetchInFlight: async (t: PeerTicket, s: number, e: number) => { asked.push(`${t.peer} ${s}-${e}`); return response(s, e, t.peer) },
        forget: () => {},
        forgetTicket: () => {}
      } as unknown as PeerClient,
      bans: new Bans(),
      lookup: async () => [{ peer: 'p1', answer: p1.answer }],
      logger: pino({ level: 'silent' }),
      self: 'self',
      isMember: peer => members.has(peer),
      alive: async peer => members.has(peer),
      returnedAt: () => back.at
    }, { name: DIGEST, upstream: { name: 'upstream', fetch: async (r) => { asked.push(`upstream ${r?.start ?? 0}-${r?.end ?? SIZE - 1}`); return response(r?.start ?? 0, r?.end ?? SIZE - 1, 'upstream') } }, lookupMs: 100, rejoinWaitMs })
    return { source, asked, members, back, p1 }
  }

  /** Started, then p1 left the cluster (`pausedHere`: seen on this node's return from a pause). */
  async function lostP1 (rejoinWaitMs: number, pausedHere: boolean): Promise<ReturnType<typeof paused>> {
    const s = paused(rejoinWaitMs)
    await s.source.fetch({ start: 0, end: MiB - 1 })
    s.back.at = pausedHere ? Date.now() : 0
    s.members.delete('p1')
    s.source.memberLeft('p1')
    s.asked.length = 0
    return s
  }

  it('the members it lost meanwhile are waited for: their ranges go to them once they rejoin, not upstream', async () => {
    // Stopped: the members dropped it, and it sees them leave on its return.
    const { source, asked, members } = await lostP1(5000, true)
    const range = source.fetch({ start: theirs, end: theirs + MiB - 1 })
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(asked).toEqual([])
    members.add('p1')
    source.memberJoined('p1')
    await range
    expect(asked).toEqual([`p1 ${theirs}-${theirs + MiB - 1}`])
  })

  it('not for long: members that do not come back leave their ranges to the upstream', async () => {
    const { source, asked } = await lostP1(200, true)
    await source.fetch({ start: theirs, end: theirs + MiB - 1 })
    expect(asked).toEqual([`upstream ${theirs}-${theirs + MiB - 1}`])
  })

  it('its own units are looked for at the members first: they took them over while it was away', async () => {
    const mine = (Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1']) === 'self') as number) * SHARE_UNIT
    const { source, asked, back, p1 } = paused(5000)
    await source.fetch({ start: 0, end: MiB - 1 })
    await source.fetch({ start: MiB, end: 2 * MiB - 1 })
    // Away for a while: p1 saw it gone and fetched this node's unit itself.
    p1.answer = { ...partial, written: [[mine, mine + SHARE_UNIT]] }
    await new Promise(resolve => setTimeout(resolve, 50))
    back.at = Date.now()
    asked.length = 0
    await source.fetch({ start: mine, end: mine + SHARE_UNIT - 1 })
    expect(asked).toEqual([`p1 ${mine}-${mine + SHARE_UNIT - 1}`])
  })

  it('without a pause, a member that left leaves its ranges to the upstream at once', async () => {
    const { source, asked } = await lostP1(5000, false)
    const t0 = Date.now()
    await source.fetch({ start: theirs, end: theirs + MiB - 1 })
    expect(asked).toEqual([`upstream ${theirs}-${theirs + MiB - 1}`])
    expect(Date.now() - t0).toBeLessThan(1000)
  })
})

describe('swarm source: a holder that froze', () => {
  it('its quiet reads are cut once it misses a ping, and the next holder serves', async () => {
    const complete: HaveAnswer = { t: 'have', state: 'complete', size: SIZE }
    const alive = new Set(['h1', 'h2'])
    const asked: string[] = []
    const { source } = swarm({ h1: complete, h2: complete }, {
      ticket: async (peer: string) => ticketOf(peer, true),
      fetchRange: async (t: PeerTicket, _list: Buffer, start: number, end: number) => {
        asked.push(`holder ${t.peer} ${start}-${end}`)
        return response(start, end, t.peer, new PassThrough())
      }
    }, { alive: async peer => alive.has(peer) })
    const first = await source.fetch({ start: 0, end: 8 * MiB - 1 })
    const failed = new Promise<unknown>(resolve => first.body.once('error', resolve))
    // h1 stops: no unit of its range comes for longer than the quiet time.
    alive.delete('h1')
    await new Promise(resolve => setTimeout(resolve, 2100))
    // Holders are taken in turn: h2, then h1 again, which is found gone and skipped for h2.
    await source.fetch({ start: 8 * MiB, end: 9 * MiB - 1 })
    await source.fetch({ start: 9 * MiB, end: 10 * MiB - 1 })
    expect(asked).toEqual(['holder h1 0-8388607', 'holder h2 8388608-9437183', 'holder h2 9437184-10485759'])
    expect(await failed).toBeInstanceOf(PeerLeftError)
  })
})

describe('swarm source: the blob failed its digest', () => {
  it('peers that sent bytes unverified are suspects to be judged, not banned at once; the convicted are banned', async () => {
    const empty = Buffer.alloc(1).toString('base64')
    const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: empty }
    const at = SHARE_UNIT * (Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'p1') as number)
    const bans = new Bans()
    const { source } = swarm({ p1: partial, p2: partial }, {
      fetchInFlight: async (t: PeerTicket, start: number, end: number, o: { onUnverified?: (n: number) => void }) => {
        // An open cluster's read of a download in flight: its bytes are unverified.
        o.onUnverified?.(end - start + 1)
        return { ...response(start, end, t.peer), unverified: true }
      }
    }, {}, bans)
    const read = async (range: { start: number, end: number }): Promise<void> => {
      const res = await source.fetch(range)
      const closed = new Promise(resolve => res.body.once('close', resolve))
      res.body.resume()
      await closed
    }
    await read({ start: 0, end: MiB - 1 })
    await read({ start: at, end: at + MiB - 1 })
    expect(source.onDigestMismatch()).toContainEqual({ peer: 'p1', start: at, end: at + MiB })
    expect(bans.isBanned('p1')).toBe(false)
    source.convict(new Set(['p1']))
    expect(bans.isBanned('p1')).toBe(true)
    expect(bans.isBanned('p2')).toBe(false)
  })
})

describe('swarm source: the first range', () => {
  it('is short when it goes upstream: members starting together each fetch it before they know of each other', async () => {
    const { source, asked } = swarm({})
    await source.fetch({ start: 0, end: 8 * MiB - 1 })
    expect(asked).toEqual([`upstream 0-${(64 << 10) - 1}`])
  })
})

describe('swarm source: a pass-through takes only bytes someone vouched for', () => {
  const empty = Buffer.alloc(1).toString('base64')
  const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: empty }
  const at = SHARE_UNIT * (Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'p1') as number)
  const unit = { start: at, end: at + SHARE_UNIT - 1 }

  const complete: HaveAnswer = { t: 'have', state: 'complete', size: SIZE }
  it.each([
    ['another member is downloading', { p1: partial, p2: partial }, 'p1'],
    ['a member holds whole (its piece list is its own word)', { p1: complete }, 'holder p1']
  ])('open cluster: a unit %s comes from the upstream; a download (which checks the digest) reads the member', async (_what, answers, served) => {
    const { source, asked } = swarm(answers)
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch(unit, { verifiedOnly: true })
    expect(asked).toHaveLength(1)
    expect(asked[0]).toMatch(new RegExp(`^upstream ${unit.start}-`))
    asked.length = 0
    const res = await source.fetch(unit)
    expect(asked).toEqual([`${served} ${unit.start}-${unit.end}`])
    expect(res.needsDigest).toBe(true)
  })

  it('keyed cluster: the member\'s vouched bytes serve it; an answer without tags goes to the upstream', async () => {
    let tagged = true
    const { source, asked } = swarm({ p1: partial, p2: partial }, {
      vouched: true,
      fetchInFlight: async (t: PeerTicket, start: number, end: number): Promise<SourceResponse> => {
        asked.push(`${t.peer} ${start}-${end}`)
        return { ...response(start, end, t.peer), unverified: !tagged }
      }
    })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    const res = await source.fetch(unit, { verifiedOnly: true })
    expect(asked).toEqual([`p1 ${unit.start}-${unit.end}`])
    expect(res.unverified).not.toBe(true)
    tagged = false
    asked.length = 0
    const next = await source.fetch({ start: unit.start + MiB, end: unit.end }, { verifiedOnly: true })
    expect(asked).toHaveLength(2)
    expect(asked[0]).toBe(`p1 ${unit.start + MiB}-${unit.end}`)
    expect(asked[1]).toMatch(new RegExp(`^upstream ${unit.start + MiB}-`))
    expect(next.unverified).not.toBe(true)
  })

  it('a pass-through owns no units: one this node would own goes to its owner among the downloaders', async () => {
    const mine = SHARE_UNIT * (Array.from({ length: SIZE / SHARE_UNIT }, (_, i) => i).find(i => i > 0 && ownerOf(i, ['self', 'p1', 'p2']) === 'self') as number)
    const { source, asked } = swarm({ p1: partial, p2: partial }, { vouched: true })
    await source.fetch({ start: 0, end: MiB - 1 })
    asked.length = 0
    await source.fetch({ start: mine, end: mine + SHARE_UNIT - 1 }, { verifiedOnly: true })
    const owner = ownerOf(mine / SHARE_UNIT, ['p1', 'p2']) as string
    expect(asked).toEqual([`${owner} ${mine}-${mine + SHARE_UNIT - 1}`])
  })
})

describe('swarm source: its download ended', () => {
  it('stops looking at the members at once', { timeout: 10_000 }, async () => {
    const partial: HaveAnswer = { t: 'have', state: 'partial', size: SIZE, pieceSize: 16 * MiB, bitmap: Buffer.alloc(1).toString('base64') }
    let looks = 0
    const counted = (): ReturnType<typeof swarm> => swarm({ p1: partial }, {}, { answering: () => { looks++; return true } })
    const ended = counted()
    await ended.source.fetch({ start: 0, end: MiB - 1 })
    await ended.source.fetch({ start: MiB, end: 2 * MiB - 1 })
    ended.source.finished()
    const atEnd = looks
    await new Promise(resolve => setTimeout(resolve, 1500))
    expect(looks).toBe(atEnd)
    // Still going, the view is kept fresh between bursts of ranges.
    const going = counted()
    await going.source.fetch({ start: 0, end: MiB - 1 })
    await going.source.fetch({ start: MiB, end: 2 * MiB - 1 })
    const before = looks
    await new Promise(resolve => setTimeout(resolve, 1500))
    expect(looks).toBeGreaterThan(before)
    going.source.finished()
  })
})
