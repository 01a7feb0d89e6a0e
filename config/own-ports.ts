import { multiaddr } from '@multiformats/multiaddr'
import type { z } from 'zod'
import { isThisMachine } from './loopback.ts'

/** The part of a parsed config whose ports one node listens on, and the upstreams it asks. */
interface Ports {
  server?: { host?: string, port?: number, upstream_proxy?: string | null }
  cluster?: { enabled?: boolean, data_port?: number, listen?: readonly string[] }
  rules?: ReadonlyArray<{ upstream?: string }>
  oci?: { registries?: Readonly<Record<string, string>> }
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

/** Whether `upstream` is the node's own HTTP listener (a request there would come back, again and again). */
function isThisNode (upstream: string, server: Ports['server']): boolean {
  let url: URL
  try {
    url = new URL(upstream)
  } catch {
    return false
  }
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80
  if (port !== (server?.port ?? 0)) return false
  const listen = server?.host ?? ''
  return isThisMachine(url.hostname) || url.hostname === listen || url.hostname === `[${listen}]`
}

/** An upstream (or upstream proxy) that is the node itself loops: named at its field. */
export function checkSelfUpstreams (config: Ports, ctx: z.RefinementCtx): void {
  const server = config.server
  const port = server?.port ?? 0
  const said = (what: string): string => `${what} is this node itself (server.port ${port}): its requests would come back to it without end`
  for (const [i, rule] of (config.rules ?? []).entries()) {
    if (rule.upstream !== undefined && isThisNode(rule.upstream, server)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'upstream'], message: said(rule.upstream) })
  }
  for (const [host, upstream] of Object.entries(config.oci?.registries ?? {})) {
    if (isThisNode(upstream, server)) ctx.addIssue({ code: 'custom', path: ['oci', 'registries', host], message: said(upstream) })
  }
  const proxy = server?.upstream_proxy
  if (proxy !== undefined && proxy !== null && proxy !== '' && isThisNode(proxy, server)) {
    ctx.addIssue({ code: 'custom', path: ['server', 'upstream_proxy'], message: said(proxy) })
  }
}
