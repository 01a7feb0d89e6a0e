import { multiaddr } from '@multiformats/multiaddr'
import type { z } from 'zod'

/** The part of a parsed config whose ports one node listens on. */
interface Ports {
  server?: { port?: number }
  cluster?: { enabled?: boolean, data_port?: number, listen?: readonly string[] }
}

/** The TCP port of a multiaddr, 0 when it has none or is not one. */
function tcpPortOf (addr: string): number {
  try {
    return Number(multiaddr(addr).getComponents().find((c) => c.name === 'tcp')?.value ?? 0)
  } catch {
    return 0
  }
}

/**
 * One node's own ports must differ, or its start fails on whichever listens second (blaming that one):
 * named here, at the cluster field, when the cluster is on.
 */
export function checkOwnPorts (config: Ports, ctx: z.RefinementCtx): void {
  const cluster = config.cluster
  if (cluster?.enabled !== true) return
  const httpPort = config.server?.port ?? 0
  const dataPort = cluster.data_port ?? 0
  if (dataPort !== 0 && dataPort === httpPort) {
    ctx.addIssue({ code: 'custom', path: ['cluster', 'data_port'], message: `the same port as server.port (${httpPort}): give the peer data port its own` })
  }
  for (const [i, addr] of (cluster.listen ?? []).entries()) {
    const port = tcpPortOf(addr)
    const clash = port === 0 ? null : port === httpPort ? 'server.port' : port === dataPort ? 'cluster.data_port' : null
    if (clash !== null) ctx.addIssue({ code: 'custom', path: ['cluster', 'listen', i], message: `port ${port} is also ${clash}: give the cluster's libp2p listener its own` })
  }
}
