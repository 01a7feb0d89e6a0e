import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Connection, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { IdentityClash } from '../../../node/cluster/identity-clash.ts'
import type { ClusterLibp2p } from '../../../node/cluster/libp2p-node.ts'

describe('one identity on two nodes', () => {
  it('says once, with both addresses, that a peer id is connected from two addresses at once', async () => {
    const lines: Array<{ level: number, msg: string, peer?: string, addresses?: string[] }> = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
    const open = new Map<string, Connection[]>()
    let onOpen: ((evt: CustomEvent<Connection>) => void) | undefined
    const libp2p = {
      addEventListener: (type: string, l: (evt: CustomEvent<Connection>) => void) => { if (type === 'connection:open') onOpen = l },
      removeEventListener: () => { onOpen = undefined },
      getConnections: (peer: PeerId) => open.get(peer.toString()) ?? []
    } as unknown as ClusterLibp2p
    const connect = (peer: PeerId, ip: string, port = 4001): void => {
      const c = { remotePeer: peer, remoteAddr: multiaddr(`/ip4/${ip}/tcp/${port}`), status: 'open' } as unknown as Connection
      open.set(peer.toString(), [...(open.get(peer.toString()) ?? []), c])
      onOpen?.(new CustomEvent('connection:open', { detail: c }))
    }
    const cloned = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const plain = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const clash = new IdentityClash({ libp2p, logger })
    clash.start()
    // Two connections of one node (both dialled at once) are no clash.
    connect(plain, '10.0.0.5')
    connect(plain, '10.0.0.5', 40123)
    connect(cloned, '10.0.0.12')
    expect(lines).toEqual([])
    connect(cloned, '10.0.0.16')
    connect(cloned, '10.0.0.16', 40124)
    const warned = lines.filter(l => l.level === 40)
    expect(warned).toHaveLength(1)
    expect(warned[0]).toMatchObject({ peer: cloned.toString(), addresses: ['10.0.0.12', '10.0.0.16'] })
    expect(warned[0]?.msg).toMatch(/peer\.key/)
    clash.stop()
  })
})
