import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { Bans } from '../../../node/cluster/bans.ts'
import { parseRange } from '../../../node/cluster/data-server.ts'
import { lanAddressMapper } from '../../../node/cluster/libp2p-node.ts'
import { staticPeerAddress } from '../../../node/cluster/static-peers.ts'
import { coalesce, PeerCorruptError, VerifyingBody } from '../../../node/cluster/verifying-body.ts'
import { PIECE_HASH_UNIT, PieceHasher } from '../../../protocol/pieces.ts'

const U = PIECE_HASH_UNIT

async function through (body: VerifyingBody, data: Buffer, chunk: number): Promise<Buffer> {
  const out: Buffer[] = []
  const src = Readable.from((function * () { for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk) })())
  await pipeline(src, body, async function (s: AsyncIterable<Buffer>) { for await (const c of s) out.push(c) })
  return Buffer.concat(out)
}

describe('verifying body', () => {
  const data = Buffer.alloc(3 * U + 100)
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff
  const h = new PieceHasher()
  h.update(data)
  const list = h.digest()

  it('passes on exactly the asked bytes of a verified span, whatever the chunking', async () => {
    for (const chunk of [1000, U, 65_536 + 3]) {
      const body = new VerifyingBody({ list, size: data.length, spanStart: U, from: U + 10, to: 3 * U + 50 })
      const got = await through(body, data.subarray(U), chunk)
      expect(got.equals(data.subarray(U + 10, 3 * U + 50))).toBe(true)
    }
  })

  it('a bad unit fails the stream before any of its bytes pass', async () => {
    const bad = Buffer.from(data)
    bad[2 * U + 5] = (bad[2 * U + 5] as number) ^ 1
    const body = new VerifyingBody({ list, size: data.length, spanStart: 0, from: 0, to: data.length })
    const out: Buffer[] = []
    body.on('data', (c: Buffer) => out.push(c))
    const err = await pipeline(Readable.from([bad]), body).then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(PeerCorruptError)
    expect((err as PeerCorruptError).piece).toBe(2)
    expect(Buffer.concat(out).length).toBeLessThanOrEqual(2 * U)
  })

  it('a span cut short passes on only whole verified units', async () => {
    const body = new VerifyingBody({ list, size: data.length, spanStart: 0, from: 0, to: data.length })
    const got = await through(body, data.subarray(0, U + 500), 4096)
    expect(got.length).toBe(U)
    expect(createHash('sha256').update(got).digest().equals(list.subarray(0, 32))).toBe(true)
  })

  it('passes TLS-sized chunks on joined into buffers of up to 256 KiB, big chunks as they are', () => {
    const small = Array.from({ length: 20 }, (_, i) => Buffer.alloc(16 << 10, i))
    const joined = coalesce(small)
    expect(joined.map(b => b.length)).toEqual([256 << 10, 64 << 10])
    expect(Buffer.concat(joined).equals(Buffer.concat(small))).toBe(true)
    const big = Buffer.alloc(U)
    const mixed = coalesce([big, ...small.slice(0, 2)])
    expect(mixed[0]).toBe(big)
    expect(mixed.map(b => b.length)).toEqual([U, 32 << 10])
  })
})

describe('small parts', () => {
  it('bans expire and double for repeat offenders', () => {
    const bans = new Bans({ baseMs: 1000 })
    expect(bans.ban('p', 0)).toBe(1000)
    expect(bans.isBanned('p', 999)).toBe(true)
    expect(bans.isBanned('p', 1000)).toBe(false)
    expect(bans.ban('p', 2000)).toBe(2000)
    expect(bans.list(2500)).toEqual([{ peer: 'p', until: 4000 }])
  })

  it.each([
    [undefined, null],
    ['bytes=0-9', [0, 10]],
    ['bytes=5-', [5, 100]],
    ['bytes=-10', [90, 100]],
    ['bytes=95-200', [95, 100]],
    ['bytes=100-', 'bad'],
    ['bytes=0-1,4-5', 'bad'],
    ['items=0-1', 'bad']
  ])('range %s of 100 bytes → %j', (header, want) => {
    expect(parseRange(header, 100)).toEqual(want)
  })

  it('static peers: host:port and multiaddrs', () => {
    expect(staticPeerAddress('10.0.0.5:4001').toString()).toBe('/ip4/10.0.0.5/tcp/4001')
    expect(staticPeerAddress('[fd00::1]:4001').toString()).toBe('/ip6/fd00::1/tcp/4001')
    expect(staticPeerAddress('node2:4001').toString()).toBe('/dns/node2/tcp/4001')
    expect(staticPeerAddress('/ip4/10.0.0.6/tcp/4001').toString()).toBe('/ip4/10.0.0.6/tcp/4001')
    expect(() => staticPeerAddress('node2')).toThrow(TypeError)
  })

  it('the DHT keeps LAN addresses and names, drops public IPs', () => {
    const id = peerIdFromString('12D3KooWJ5DZYkbHew5361W2znDbo2PRC1qqNTVx7hT5rsYYW9Mi')
    const kept = lanAddressMapper({ id, multiaddrs: ['/ip4/10.1.2.3/tcp/1', '/ip4/127.0.0.1/tcp/1', '/ip4/8.8.8.8/tcp/1', '/dns/node1/tcp/1', '/ip6/fd00::1/tcp/1'].map(a => multiaddr(a)) })
    expect(kept.multiaddrs.map(String)).toEqual(['/ip4/10.1.2.3/tcp/1', '/ip4/127.0.0.1/tcp/1', '/dns/node1/tcp/1', '/ip6/fd00::1/tcp/1'])
  })
})
