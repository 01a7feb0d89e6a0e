import { setTimeout as sleep } from 'node:timers/promises'
import { Key } from 'interface-datastore'
import { pino } from 'pino'
import { expect, it } from 'vitest'
import { Bans } from '../../../node/cluster/bans.ts'
import { CompactDatastore } from '../../../node/cluster/compact-datastore.ts'
import { ContentRouter } from '../../../node/cluster/routing.ts'
import type { RoutingComponents } from '../../../node/cluster/routing.ts'
import { cidFromSha256 } from '../../../protocol/cid.ts'
import { nameId } from '../../../protocol/names.ts'

const hex = (c: string): string => c.repeat(64)

/**
 * A router over a fake store (`held` digests, of which `secret` were fetched with credentials) and
 * downloads (`downloading` keys), recording provides and withdrawals.
 */
function router (held: Set<string>, downloading: Set<string>, secret = new Set<string>()): { r: ContentRouter, provided: string[], withdrawn: string[] } {
  const provided: string[] = []
  const withdrawn: string[] = []
  const components = {
    membership: { memberIds: () => ['peer'] },
    store: { index: { blobs: async function * () { for (const d of [...held]) yield [d, {}] } }, isPublic: (d: string) => !secret.has(d) },
    downloads: () => [...downloading].map(key => ({ key })),
    bans: new Bans(),
    logger: pino({ level: 'silent' }),
    libp2p: {
      peerId: { toString: () => 'self' },
      contentRouting: {
        provide: async (cid: unknown) => { provided.push(String(cid)) },
        cancelReprovide: async (cid: unknown) => { withdrawn.push(String(cid)) }
      }
    }
  } as unknown as RoutingComponents
  return { r: new ContentRouter(components, { provideDelayMs: 1 }), provided, withdrawn }
}

const cid = (name: string): string => String(cidFromSha256(nameId(name)))

it('withdraws what it no longer holds nor downloads, and nothing else: the DHT would renew those records for ever', async () => {
  const held = new Set([hex('a'), hex('b')])
  const downloading = new Set([`sha256:${hex('c')}`, 'url:https://example.com/f.bin'])
  const { r, provided, withdrawn } = router(held, downloading)
  r.provide('url:https://example.com/f.bin')
  await r.sweep()
  await sleep(20)
  expect(new Set(provided)).toEqual(new Set([cid(hex('a')), cid(hex('b')), cid(hex('c')), cid('url:https://example.com/f.bin')]))
  expect(withdrawn).toEqual([])

  // b evicted, c's download failed, the URL's download committed (its blob goes by its digest, a).
  held.delete(hex('b'))
  downloading.clear()
  await sleep(2)
  await r.sweep()
  expect(new Set(withdrawn)).toEqual(new Set([cid(hex('b')), cid(hex('c')), cid('url:https://example.com/f.bin')]))

  // Held again later: provided again (not kept out by the earlier record).
  held.add(hex('b'))
  await r.sweep()
  await sleep(20)
  expect(provided.filter(p => p === cid(hex('b')))).toHaveLength(2)
  r.stop()
})

it('keeps each DHT record in a buffer of its own size, not a view holding the buffer it was cut from', async () => {
  const store = new CompactDatastore()
  const big = Buffer.alloc(64 << 10, 7)
  await store.put(new Key('/aimirror-dht/provider/x/y'), big.subarray(10, 18))
  const kept = await store.get(new Key('/aimirror-dht/provider/x/y'))
  expect(kept.buffer.byteLength).toBe(8)
  expect([...kept]).toEqual([7, 7, 7, 7, 7, 7, 7, 7])
})

it('does not provide a blob fetched with a client\'s credentials', async () => {
  const { r, provided } = router(new Set([hex('a'), hex('d')]), new Set(), new Set([hex('d')]))
  await r.sweep()
  await sleep(20)
  expect(provided).toEqual([cid(hex('a'))])
  r.stop()
})
