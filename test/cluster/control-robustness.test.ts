import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { controlProtocol, LIMITS } from '../../protocol/ids.ts'
import { startClusterNode, until } from './helpers.ts'
import type { ClusterTestNode } from './helpers.ts'

/** A member sending garbage, oversized or no messages gets its stream reset; the node keeps answering. */
describe('control protocol robustness', () => {
  let a: ClusterTestNode
  let b: ClusterTestNode

  beforeAll(async () => {
    a = await startClusterNode()
    b = await startClusterNode({ peers: [a.addr] })
    await until(() => b.cluster.running?.membership.isMember(a.peerId) === true && a.cluster.running?.membership.isMember(b.peerId) === true, 20_000, 'membership')
  }, 60_000)

  afterAll(async () => {
    await b.stop()
    await a.stop()
  })

  async function rawStream (): Promise<ReturnType<typeof lpStream>> {
    const libp2p = b.cluster.running?.libp2p
    if (libp2p === undefined) throw new Error('not running')
    const stream = await libp2p.dialProtocol(peerIdFromString(a.peerId), controlProtocol('test'))
    return lpStream(stream, { maxDataLength: 1 << 20 })
  }

  async function answered (): Promise<boolean> {
    const stats = await b.cluster.running?.control.stats(a.peerId)
    return stats?.peer_id === a.peerId
  }

  it.each([
    ['not JSON', Buffer.from('{{{{')],
    ['an unknown request', Buffer.from(JSON.stringify({ t: 'rm', key: 'x' }))],
    ['a request with a path for a key', Buffer.from(JSON.stringify({ t: 'have', key: 'sha256:../../etc/passwd' }))]
  ])('%s resets the stream', async (_name, bytes) => {
    const lp = await rawStream()
    await lp.write(bytes)
    const got = await lp.read({ signal: AbortSignal.timeout(5000) }).then(() => 'answer', (err: unknown) => (err as Error).name)
    expect(got).not.toBe('answer')
    expect(await answered()).toBe(true)
  })

  it('a message over the size limit resets the stream', async () => {
    const lp = await rawStream()
    await lp.write(Buffer.alloc(LIMITS.maxMessageBytes + 10, 0x20)).catch(() => {})
    const got = await lp.read({ signal: AbortSignal.timeout(5000) }).then(() => 'answer', (err: unknown) => (err as Error).name)
    expect(got).not.toBe('answer')
    expect(await answered()).toBe(true)
  })

  it('a silent stream is reset at the deadline', async () => {
    const lp = await rawStream()
    const started = Date.now()
    const got = await lp.read({ signal: AbortSignal.timeout(LIMITS.streamDeadlineMs + 5000) }).then(() => 'answer', (err: unknown) => (err as Error).name)
    expect(got).not.toBe('answer')
    expect(got).not.toBe('TimeoutError')
    expect(Date.now() - started).toBeGreaterThanOrEqual(LIMITS.streamDeadlineMs - 500)
    expect(await answered()).toBe(true)
  }, 20_000)

  it('inbound streams per connection are bounded', async () => {
    // Within the deadline, streams over the cap are reset at once; the others are still waiting.
    const streams = await Promise.all(Array.from({ length: LIMITS.maxInboundStreams + 8 }, async () => await rawStream()))
    const outcome = await Promise.all(streams.map(async lp => await lp.read({ signal: AbortSignal.timeout(2000) }).then(() => 'answer', (err: unknown) => (err as Error).name === 'TimeoutError' ? 'waiting' : 'reset')))
    expect(outcome.filter(o => o === 'reset').length).toBeGreaterThanOrEqual(8)
    expect(outcome.filter(o => o === 'waiting').length).toBeGreaterThan(0)
    for (const lp of streams) lp.unwrap().abort(new Error('done'))
    await until(async () => await answered().catch(() => false), 20_000, 'answers again')
  }, 20_000)
})
