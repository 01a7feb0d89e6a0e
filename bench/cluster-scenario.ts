import { execFile } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { RssSampler } from './procs.ts'
import type { Children } from './procs.ts'
import type { BenchLan } from './cluster-lan.ts'
import { NODE_URL, getJson, registryToken, startLanNode, waitForCluster } from './cluster-nodes.ts'
import type { CurlTiming, LanNode, LanUpstream, UpstreamBlob } from './cluster-nodes.ts'
import { MB } from './cluster-report.ts'
import type { ClusterBenchOptions, ClusterRow } from './cluster-report.ts'

/** Everything a cluster scenario needs; built once by cluster.ts. */
export interface ClusterContext {
  opts: ClusterBenchOptions
  lan: BenchLan
  children: Children
  upstream: LanUpstream
  nodeBin: string
  root: string
  dir: string
  /** null: an open cluster. */
  keyFile: string | null
  nginxBin: string | null
  timeoutMs: number
  log: (line: string) => void
}

export interface ClusterScenario {
  id: string
  /** Upstream blobs the scenario reads; each is cold for every node that asks for it. */
  blobs: readonly string[]
  /** Pushes its rows as it creates them (a failure is recorded on the last one) and throws on failure. */
  run: (ctx: ClusterContext, rows: ClusterRow[]) => Promise<void>
}

/** LAN host 0 is the upstream; nodes A, B, … are hosts 1…; the cluster-off node is the one after them. */
const NAMES = 'ABCDEFGH'

/** Fresh nodes (new caches) with the cluster on, static peers, all members of each other. */
export async function startNodes (ctx: ClusterContext, scenario: string, count: number, clusterOff = 0, maxSizeGb?: (i: number) => number | undefined): Promise<LanNode[]> {
  const hosts = Array.from({ length: count }, (_, i) => ctx.lan.host(i + 1))
  const start = async (i: number, cluster: boolean): Promise<LanNode> => await startLanNode(ctx.lan, {
    nodeBin: ctx.nodeBin, root: ctx.root, dir: join(ctx.dir, scenario), name: NAMES[i] ?? `N${i}`, host: ctx.lan.host(i + 1),
    upstreamUrl: ctx.upstream.url, conns: ctx.opts.conns, cluster, peers: cluster ? hosts : [], keyFile: ctx.keyFile, tls: ctx.opts.tls,
    maxSizeGb: maxSizeGb?.(i)
  })
  const nodes = await Promise.all([
    ...hosts.map(async (_, i) => await start(i, true)),
    ...Array.from({ length: clusterOff }, async (_, j) => await start(count + j, false))
  ])
  await waitForCluster(ctx.lan, nodes.filter(n => n.cluster))
  return nodes
}

export async function stopNodes (ctx: ClusterContext, scenario: string, nodes: readonly LanNode[]): Promise<void> {
  await Promise.all(nodes.map(async n => { await ctx.children.stop(n.child) }))
  if (!ctx.opts.keep) await rm(join(ctx.dir, scenario), { recursive: true, force: true })
}

/** Runs `fn` while sampling the nodes' RSS; `fn`'s value and the highest peak, MiB. */
export async function sampled<T> (nodes: readonly LanNode[], fn: () => Promise<T>): Promise<{ value: T; rssMiB: number; rssEach: number[]; cpuS: number[]; sysS: number[] }> {
  const samplers = nodes.map(n => new RssSampler(n.pid))
  for (const s of samplers) s.start()
  try {
    const value = await fn()
    const done = samplers.map(s => s.stop())
    return { value, rssMiB: Math.max(0, ...done.map(d => d.peakMiB)), rssEach: done.map(d => d.peakMiB), cpuS: done.map(d => d.cpuS), sysS: done.map(d => d.sysS) }
  } finally {
    for (const s of samplers) s.stop()
  }
}

export function upstreamBlob (ctx: ClusterContext, name: string): UpstreamBlob {
  const b = ctx.upstream.blobs[name]
  if (b === undefined) throw new Error(`upstream has no blob ${name}`)
  return b
}

/** Throws unless a download completed with the expected status and size (the node checked the digest). */
export function expectBody (what: string, t: CurlTiming, size: number): void {
  if (t.status !== 200) throw new Error(`${what}: HTTP ${t.status}`)
  if (t.bytes !== size) throw new Error(`${what}: ${t.bytes} bytes, expected ${size}`)
}

export const mbps = (size: number, s: number): number => size / MB / s

export async function upstreamBytes (ctx: ClusterContext, name: string): Promise<number> {
  return (await ctx.upstream.stats()).byBlob[name] ?? 0
}

/** The node's own line of /cluster/stats. */
export async function selfStats (ctx: ClusterContext, n: LanNode): Promise<{ bytes_from_peers?: number; bytes_to_peers?: number }> {
  const view = await getJson<{ nodes: Array<{ self: boolean; bytes_from_peers?: number; bytes_to_peers?: number }> }>(ctx.lan, n.host.ns, `${NODE_URL}/cluster/stats`)
  return view.nodes.find(v => v.self) ?? {}
}

export async function sha256sum (file: string): Promise<string> {
  const { stdout } = await promisify(execFile)('sha256sum', [file], { timeout: 300_000 })
  return stdout.split(' ')[0] ?? ''
}

/** Where a node serves an upstream blob: its registry path, or with --by-url the same file through the generic rule. */
export function blobUrl (ctx: ClusterContext, b: UpstreamBlob): string {
  return `${NODE_URL}${ctx.opts.byUrl ? '/files' : ''}${b.path}`
}

/**
 * The registry token a client of `url` needs (an anonymous pull token, as docker gets one); none for
 * --by-url, whose generic rule asks for none (and whose probe would start the download).
 */
export async function tokenFor (ctx: ClusterContext, ns: string, url: string): Promise<string | null> {
  return ctx.opts.byUrl ? null : await registryToken(ctx.lan, ns, url)
}
