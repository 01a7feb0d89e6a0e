/**
 * What peers agree on before any byte moves: protocol ids, the mDNS service tag and the limits every
 * stream obeys. Cluster names are part of the protocol ids, so nodes of two clusters on one LAN never
 * speak each other's DHT or control protocol.
 */

/** multicast DNS service tag of aimirror nodes (not the IPFS `_p2p` tag: other libp2p apps stay out). */
export const MDNS_SERVICE_TAG = '_aimirror._udp.local'

/** Version of the control and membership protocols. */
export const PROTOCOL_VERSION = '1.0.0'

/** `/aimirror/<cluster>`: prefix of every aimirror protocol of one cluster (kad-dht appends `/kad/1.0.0`). */
export function protocolPrefix (cluster: string): string {
  return `/aimirror/${cluster}`
}

/** Membership challenge: both sides prove they hold the cluster key, bound to both peer ids. */
export function membershipProtocol (cluster: string): string {
  return `${protocolPrefix(cluster)}/member/${PROTOCOL_VERSION}`
}

/** Control requests (have, ticket, stats): one request and one answer per stream. */
export function controlProtocol (cluster: string): string {
  return `${protocolPrefix(cluster)}/ctl/${PROTOCOL_VERSION}`
}

export function kadProtocol (cluster: string): string {
  return `${protocolPrefix(cluster)}/kad/1.0.0`
}

export const LIMITS = {
  /** Largest control or membership message (a have-bitmap of 1M pieces fits). */
  maxMessageBytes: 256 * 1024,
  /** Every control or membership stream is done within this, or reset. */
  streamDeadlineMs: 5_000,
  /** Concurrent inbound control streams per connection; more are refused by libp2p. */
  maxInboundStreams: 32,
  maxOutboundStreams: 64,
  /** Lifetime of a data-plane ticket. */
  ticketTtlMs: 10 * 60_000,
  /** Largest piece-hash list served (32 bytes a MiB: a 256 GiB blob). */
  maxPieceListBytes: 8 * 1024 * 1024
} as const
