import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { ClusterLibp2p } from '../../../node/cluster/libp2p-node.ts'
import { Membership } from '../../../node/cluster/membership.ts'
import { membershipProtocol, PROTOCOL_VERSION } from '../../../protocol/ids.ts'

async function newPeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

describe('membership: aimirror nodes that are not in this cluster', () => {
  it('says once per node, with its address and why, that a node of another cluster name or version is no member', async () => {
    const lines: Array<{ level: number, msg: string, addr?: string, why?: string, peer?: string }> = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
    const listeners = new Map<string, (evt: CustomEvent) => void>()
    const dialed: string[] = []
    const libp2p = {
      handle: async () => {},
      unhandle: async () => {},
      addEventListener: (type: string, l: (evt: CustomEvent) => void) => { listeners.set(type, l) },
      removeEventListener: () => {},
      getConnections: (peer: PeerId) => [{ remoteAddr: multiaddr(`/ip4/10.0.0.${peer.equals(typo) ? 7 : 8}/tcp/4001`) }],
      dialProtocol: async (peer: PeerId) => { dialed.push(peer.toString()); throw new Error('no stream in this test') }
    } as unknown as ClusterLibp2p
    const typo = await newPeer()
    const old = await newPeer()
    const other = await newPeer()
    const m = new Membership({ libp2p, logger }, { cluster: 'office', key: null })
    await m.start()
    const identify = (peerId: PeerId, protocols: string[]): void => {
      listeners.get('peer:identify')?.(new CustomEvent('peer:identify', { detail: { peerId, protocols } }))
    }
    identify(typo, ['/ipfs/id/1.0.0', membershipProtocol('ofice')])
    identify(typo, ['/ipfs/id/1.0.0', membershipProtocol('ofice')])
    identify(old, [membershipProtocol('office').replace(PROTOCOL_VERSION, '0.9.0')])
    identify(other, ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0'])
    await m.stop()

    const said = lines.filter(l => l.msg === 'aimirror node seen that is not in this cluster')
    expect(said).toHaveLength(2)
    // A warning, as the README lists it: once per peer, and a typo in a config looks exactly like this.
    expect(said[0]).toMatchObject({ level: 40, peer: typo.toString(), addr: '/ip4/10.0.0.7/tcp/4001' })
    expect(said[0]?.why).toMatch(/cluster "ofice", this node in "office" \(cluster\.name\)/)
    expect(said[1]?.why).toMatch(/version 0\.9\.0 of the member protocol/)
    // None of them is challenged: they do not speak this cluster's member protocol.
    expect(dialed).toEqual([])
  })
})
