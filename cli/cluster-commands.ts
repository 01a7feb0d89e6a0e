import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from '../config/types.ts'
import type { ClusterStatsView, PeersView } from '../node/cluster/view.ts'
import { formatClusterKey } from '../protocol/membership.ts'
import type { CliArgs } from './args.ts'
import { UsageError } from './args.ts'

/** The node's own URL: --url, else the configured listen address (a wildcard means this machine). */
export function nodeUrl (config: Config, url?: string): string {
  if (url !== undefined) {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new UsageError(`--url: not an http(s) URL: ${url}`)
    return url.replace(/\/+$/, '')
  }
  const h = config.server.host
  const host = h === '0.0.0.0' || h === '' ? '127.0.0.1' : h === '::' ? '[::1]' : h.includes(':') ? `[${h}]` : h
  return `http://${host}:${config.server.port}`
}

/** `url`'s JSON, when it has `field` (what this node's answer always has). */
async function getJson<T> (url: string, field: string): Promise<T> {
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    throw new UsageError(`cannot reach the node at ${new URL(url).origin} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}); is it running? (--url)`)
  }
  if (!res.ok) throw new UsageError(`${url} answered ${res.status}`)
  const body = await res.json().catch(() => null) as unknown
  if (body === null || typeof body !== 'object' || !(field in body)) throw new UsageError(`${url} did not answer as an aimirror node does; is --url right?`)
  return body as T
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i] as string}`
}

/** Left-aligned text columns, right-aligned numbers. */
export function table (header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const numeric = header.map((_, i) => rows.length > 0 && rows.every(r => /^[\d.,]+( [KMGT]?i?B)?%?$|^-$/.test(r[i] ?? '')))
  const line = (cells: readonly string[]): string => cells.map((c, i) => numeric[i] === true ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(header), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n'
}

function shortId (id: string): string {
  return id.length > 16 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id
}

/** The first host of `addrs` (multiaddrs) that is not loopback; loopback when there is no other (nodes on one machine). */
function hostOf (addrs: readonly string[]): string | undefined {
  const hosts = addrs.map(a => /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)/.exec(a)?.[1]).filter((h): h is string => h !== undefined)
  return hosts.find(h => !/^(127\.|::1$|localhost$)/.test(h)) ?? hosts[0]
}

/**
 * Where each node is, by peer id, from a `/peers` answer: the first address that is not loopback (a
 * peer id alone tells an admin nothing about which machine it is).
 */
export function addressesOf (v: PeersView): Map<string, string> {
  const out = new Map<string, string>()
  if (v.self !== null) {
    const self = hostOf(v.self.addresses)
    if (self !== undefined) out.set(v.self.peer_id, self)
  }
  for (const p of v.peers) {
    const host = hostOf(p.addresses)
    if (host !== undefined) out.set(p.peer_id, host)
  }
  return out
}

/** How long ago an ISO time was, in whole seconds, minutes or hours. */
function ago (iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  return `${Math.round(s / 3600)} h ago`
}

export function renderClusterStats (v: ClusterStatsView, addresses: ReadonlyMap<string, string> = new Map()): string {
  const where = (n: { peer_id: string, address?: string }): string => addresses.get(n.peer_id) ?? hostOf(n.address === undefined ? [] : [n.address]) ?? '-'
  const rows = v.nodes.map(n => n.reachable
    ? [`${shortId(n.peer_id === '' ? 'this node' : n.peer_id)}${n.self ? ' *' : ''}`, n.host ?? '-', where(n), formatBytes(n.cache?.size_bytes ?? 0), String(n.cache?.blobs ?? 0),
        String(n.hits ?? 0), String(n.misses ?? 0), formatBytes(n.bytes_from_cache ?? 0), formatBytes(n.bytes_from_peers ?? 0),
        formatBytes(n.bytes_from_upstream ?? 0), formatBytes(n.bytes_to_peers ?? 0), String(n.active_downloads ?? 0), String(n.peer_bans ?? 0)]
    : [shortId(n.peer_id), '-', where(n), `unreachable (${n.left_at === undefined ? n.error ?? '?' : `left ${ago(n.left_at)}`})`, '-', '-', '-', '-', '-', '-', '-', '-', '-'])
  const t = v.totals
  rows.push(['total', '', '', formatBytes(t.cache_size_bytes), String(t.blobs), String(t.hits), String(t.misses), formatBytes(t.bytes_from_cache),
    formatBytes(t.bytes_from_peers), formatBytes(t.bytes_from_upstream), formatBytes(t.bytes_to_peers), String(t.active_downloads), String(t.peer_bans)])
  const head = v.enabled ? `cluster "${v.cluster}" (${v.mode}), ${t.reachable} of ${t.nodes} nodes reachable` : 'cluster off: this node only'
  return `${head}\n\n${table(['node', 'host', 'address', 'cache', 'blobs', 'hits', 'misses', 'from cache', 'from peers', 'from upstream', 'to peers', 'downloads', 'bans'], rows)}` +
    `\nhit rate ${(t.hit_rate * 100).toFixed(1)}%, upstream spared ${formatBytes(t.bytes_saved_upstream)}\n`
}

export function renderPeers (v: PeersView): string {
  if (!v.enabled || v.self === null) return 'cluster off (set cluster.enabled or AIMIRROR_CLUSTER=1)\n'
  const rows = v.peers.map(p => [p.peer_id, p.member ? 'member' : 'not a member', p.banned ? 'banned' : '', p.addresses.join(' '), p.since ?? ''])
  return `this node ${v.self.peer_id}, data port ${v.self.data_port}\n  ${v.self.addresses.join('\n  ')}\n\n` +
    (rows.length === 0 ? 'no peers connected\n' : table(['peer', 'membership', 'ban', 'addresses', 'since'], rows))
}

export async function runStats (config: Config, args: CliArgs): Promise<number> {
  const base = nodeUrl(config, args.url)
  if (args.cluster === true) {
    const view = await getJson<ClusterStatsView>(`${base}/cluster/stats`, 'nodes')
    if (args.json === true) {
      process.stdout.write(`${JSON.stringify(view, null, 2)}\n`)
      return 0
    }
    // The addresses are a help, not the answer: a node whose /peers fails still gets its table.
    const peers = view.enabled ? await getJson<PeersView>(`${base}/peers`, 'peers').catch(() => null) : null
    process.stdout.write(renderClusterStats(view, peers === null ? undefined : addressesOf(peers)))
    return 0
  }
  const stats = await getJson<{ cache: Record<string, unknown> }>(`${base}/stats`, 'cache')
  if (args.json === true) process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`)
  else process.stdout.write(table(['stat', 'value'], Object.entries(stats.cache).map(([k, v]) => [k, String(v)])))
  return 0
}

export async function runPeers (config: Config, args: CliArgs): Promise<number> {
  const view = await getJson<PeersView>(`${nodeUrl(config, args.url)}/peers`, 'peers')
  process.stdout.write(args.json === true ? `${JSON.stringify(view, null, 2)}\n` : renderPeers(view))
  return 0
}

/** Writes a new cluster key to `file` (mode 0600, never over an existing file) or to stdout. */
export async function runKeygen (file: string | undefined): Promise<number> {
  const text = formatClusterKey()
  if (file === undefined || file === '-') {
    process.stdout.write(text)
    return 0
  }
  try {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const isDir = code === 'EEXIST' && await stat(file).then(s => s.isDirectory(), () => false)
    const why = isDir
      ? `${file} is a directory; name the key file to write (e.g. ${join(file, 'cluster.key')})`
      : code === 'EEXIST'
        ? `${file} exists; not overwriting a cluster key`
        : code === 'ENOENT' ? `cannot write ${file}: its directory does not exist` : `cannot write ${file} (${code ?? String(err)})`
    throw new UsageError(why)
  }
  process.stderr.write(`cluster key written to ${file}; give every node a copy and set cluster.key_file to it\n`)
  return 0
}
