import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Connection, IdentifyResult, PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { IdentityClash, userAgent } from '../../../node/cluster/identity-clash.ts'
import type { ClusterLibp2p } from '../../../node/cluster/libp2p-node.ts'

describe('one identity on two nodes', () => {
  it('says once, with both addresses, that one peer id answers from two running processes', async () => {
    const lines: Array<{ level: number, msg: string, peer?: string, addresses?: string[] }> = []
    const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
    let onIdentify: ((evt: CustomEvent<IdentifyResult>) => void) | undefined
    const libp2p = {
      addEventListener: (type: string, l: (evt: CustomEvent<IdentifyResult>) => void) => { if (type === 'peer:identify') onIdentify = l },
      removeEventListener: () => { onIdentify = undefined }
    } as unknown as ClusterLibp2p
    /** A connection from `ip`, identified as process `instance`; returned so the test can close it. */
    const identify = (peer: PeerId, ip: string, instance: string): { status: string } => {
      const connection = { remotePeer: peer, remoteAddr: multiaddr(`/ip4/${ip}/tcp/4001`), status: 'open' }
      onIdentify?.(new CustomEvent('peer:identify', { detail: { peerId: peer, agentVersion: userAgent('1.0.0', instance), connection: connection as unknown as Connection, listenAddrs: [], protocols: [] } }))
      return connection
    }
    const cloned = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const plain = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const clash = new IdentityClash({ libp2p, logger })
    clash.start()
    // One process on two connections, from two addresses (a host with two LAN addresses): no clash.
    identify(plain, '10.0.0.5', 'aa01')
    identify(plain, '10.0.0.6', 'aa01')
    // A node restarted: its old connection closed before the new one identified.
    const old = identify(plain, '10.0.0.5', 'aa01')
    old.status = 'closed'
    identify(plain, '10.0.0.5', 'bb02')
    identify(cloned, '10.0.0.12', 'cc03')
    expect(lines).toEqual([])
    identify(cloned, '10.0.0.16', 'dd04')
    identify(cloned, '10.0.0.12', 'cc03')
    const warned = lines.filter(l => l.level === 40)
    expect(warned).toHaveLength(1)
    expect(warned[0]).toMatchObject({ peer: cloned.toString(), addresses: ['10.0.0.12', '10.0.0.16'] })
    expect(warned[0]?.msg).toMatch(/peer\.key/)
    clash.stop()
  })
})
