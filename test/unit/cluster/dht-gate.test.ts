import { generateKeyPair } from '@libp2p/crypto/keys'
import type { KadDHTComponents } from '@libp2p/kad-dht'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { gatedDhtComponents } from '../../../node/cluster/dht-gate.ts'

type Handler = (stream: FakeStream, connection: { remotePeer: PeerId }) => Promise<void>
interface FakeStream { aborted: Error | null, abort: (err: Error) => void }

function fakeStream (): FakeStream {
  const s: FakeStream = { aborted: null, abort: (err) => { s.aborted = err } }
  return s
}

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** The parts of the DHT's components the gate touches, recording what reaches them. */
function fakeComponents () {
  const handlers = new Map<string, Handler>()
  const opened: unknown[] = []
  const registrar = {
    name: 'registrar',
    async handle (protocol: string, handler: Handler): Promise<void> { handlers.set(protocol, handler) },
    getProtocols (this: { name: string }): string[] { return [this.name] }
  }
  const connectionManager = {
    async openStream (to: unknown): Promise<string> { opened.push(to); return 'stream' }
  }
  const components = { registrar, connectionManager, datastore: 'ds' } as unknown as KadDHTComponents
  return { components, handlers, opened }
}

describe('the DHT gate', () => {
  it('hands an admitted peer\'s stream to the handler once, and aborts a refused peer\'s', async () => {
    const [member, outsider] = [await peer(), await peer()]
    const { components, handlers } = fakeComponents()
    const gated = gatedDhtComponents(components, async p => p.equals(member))
    const handled: FakeStream[] = []
    await gated.registrar.handle('/kad', (async (stream: FakeStream) => { handled.push(stream) }) as never)
    const handler = handlers.get('/kad')
    if (handler === undefined) throw new Error('no handler registered')
    const ok = fakeStream()
    const refused = fakeStream()
    await handler(ok, { remotePeer: member })
    await handler(ok, { remotePeer: member })
    await handler(refused, { remotePeer: outsider })
    expect(handled).toEqual([ok, ok])
    expect(ok.aborted).toBeNull()
    expect(refused.aborted).toMatchObject({ code: 'NOT_MEMBER' })
  })

  it('aborts the stream when admission fails', async () => {
    const { components, handlers } = fakeComponents()
    const gated = gatedDhtComponents(components, async () => { throw new Error('membership stopped') })
    await gated.registrar.handle('/kad', (async () => { throw new Error('must not run') }) as never)
    const s = fakeStream()
    await handlers.get('/kad')?.(s, { remotePeer: await peer() })
    expect(s.aborted?.message).toBe('membership stopped')
  })

  it('opens DHT streams to admitted peers only; other parts pass through, methods bound', async () => {
    const [member, outsider] = [await peer(), await peer()]
    const { components, opened } = fakeComponents()
    const gated = gatedDhtComponents(components, async p => p.equals(member))
    await expect(gated.connectionManager.openStream(member, '/kad')).resolves.toBe('stream')
    await expect(gated.connectionManager.openStream(outsider, '/kad')).rejects.toMatchObject({ code: 'NOT_MEMBER' })
    expect(opened).toEqual([member])
    expect(gated.datastore).toBe('ds')
    const { getProtocols } = gated.registrar
    expect(getProtocols()).toEqual(['registrar'])
  })
})
