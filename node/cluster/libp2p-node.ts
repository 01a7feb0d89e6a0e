import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { Identify } from '@libp2p/identify'
import type { ConnectionGater, Libp2p, PeerInfo, PrivateKey } from '@libp2p/interface'
import { kadDHT } from '@libp2p/kad-dht'
import type { KadDHT, KadDHTComponents } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { isPrivate } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import type { ClusterConfig } from '../../config/types.ts'
import { kadProtocol, MDNS_SERVICE_TAG } from '../../protocol/ids.ts'
import { gatedDhtComponents } from './dht-gate.ts'
import type { DhtAdmission } from './dht-gate.ts'
import { userAgent } from './identity-clash.ts'
import { CompactDatastore } from './compact-datastore.ts'

export interface ClusterServices {
  identify: Identify
  ping: Ping
  dht: KadDHT
  [key: string]: unknown
}

export type ClusterLibp2p = Libp2p<ClusterServices>

/**
 * Keeps the addresses a LAN peer can be reached on: private, loopback and link-local IPs and DNS names
 * (compose service names). Public IPs are dropped: the cluster is a LAN thing.
 */
export function lanAddressMapper (peer: PeerInfo): PeerInfo {
  return {
    ...peer,
    multiaddrs: peer.multiaddrs.filter(ma => {
      const ip = ma.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')
      return ip === undefined || isPrivate(ma) === true
    })
  }
}

/** How long a provider record stays valid on the members that keep it (renewed halfway by its provider). */
const PROVIDER_VALIDITY_MS = 6 * 3600_000

export interface Libp2pNodeInit {
  privateKey: PrivateKey
  cluster: ClusterConfig
  connectionGater: ConnectionGater
  version: string
  /** Who may use the cluster DHT, both ways (see gatedDhtComponents); everyone when absent. */
  dhtAdmission?: DhtAdmission
}

/**
 * The node's libp2p host: TCP, Noise, Yamux, identify, ping, the cluster's own kad-dht (private protocol
 * prefix, server mode, LAN addresses) and, unless turned off, mDNS with aimirror's service tag.
 * Not started; the cluster starts it after registering its protocols.
 */
export async function createLibp2pNode (init: Libp2pNodeInit): Promise<ClusterLibp2p> {
  const c = init.cluster
  const dht = kadDHT({
    protocol: kadProtocol(c.name),
    clientMode: false,
    peerInfoMapper: lanAddressMapper,
    logPrefix: 'libp2p:aimirror-dht',
    datastorePrefix: '/aimirror-dht',
    metricsPrefix: 'aimirror_dht',
    allowQueryWithZeroPeers: true,
    // Records of blobs evicted here are withdrawn (routing.ts), but the copies other members keep live
    // out their validity: hours, not the default two days, on a LAN where members renew what they hold.
    reprovide: { validity: PROVIDER_VALIDITY_MS, threshold: PROVIDER_VALIDITY_MS / 2, interval: PROVIDER_VALIDITY_MS / 6 }
  })
  return await createLibp2p<ClusterServices>({
    start: false,
    privateKey: init.privateKey,
    nodeInfo: { name: 'aimirror', version: init.version, userAgent: userAgent(init.version) },
    addresses: { listen: [...c.listen], announce: [...c.announce] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: init.connectionGater,
    datastore: new CompactDatastore(),
    // A connection that has not finished its handshake in 3 s is dropped (a LAN handshake takes
    // milliseconds), with room for 64 of them: 40 raw TCP connections held open from one address filled
    // libp2p's default 10 slots for 10 s each, and members could not join meanwhile.
    connectionManager: { maxConnections: 200, inboundUpgradeTimeout: 3000, maxIncomingPendingConnections: 64 },
    peerDiscovery: c.mdns ? [mdns({ serviceTag: MDNS_SERVICE_TAG, interval: 10_000 })] : [],
    services: {
      identify: identify(),
      // Downloads sharing a blob ask whether a quiet member is still there (node/cluster/swarm-source.ts),
      // next to libp2p's own connection monitor: more than ping's default one stream at a time.
      ping: ping({ maxInboundStreams: 16, maxOutboundStreams: 8 }),
      dht: (components: KadDHTComponents) => dht(init.dhtAdmission === undefined ? components : gatedDhtComponents(components, init.dhtAdmission))
    }
  })
}
