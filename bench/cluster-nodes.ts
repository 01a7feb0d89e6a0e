import { existsSync, statSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { stringify } from 'yaml'
import { logTail } from './procs.ts'
import type { BenchLan, LanHost } from './cluster-lan.ts'

/** A node process inside a namespace; its HTTP front answers on 127.0.0.1:8081 there. */
export interface LanNode {
  name: string
  host: LanHost
  cacheDir: string
  logFile: string
  child: ChildProcess
  pid: number
  cluster: boolean
}

export interface LanNodeInit {
  nodeBin: string
  root: string
  dir: string
  name: string
  host: LanHost
  upstreamUrl: string
  conns: number
  /** Cluster on (static peers, no mDNS) or off. */
  cluster: boolean
  peers: readonly LanHost[]
  /** null: an open cluster. */
  keyFile: string | null
  /** HTTPS between the nodes (cluster.data_tls). */
  tls?: boolean
  /** cache.max_size_gb (default 1000). */
  maxSizeGb?: number
}

export const NODE_URL = 'http://127.0.0.1:8081'
const LIBP2P_PORT = 4001
const DATA_PORT = 4002

/**
 * Starts a node as users do (`bin/aimirror.js start`, compiled dist/, tuned V8 flags) in a namespace,
 * with a fresh cache and an OCI blob rule like the README's, and waits until it answers /health.
 */
export async function startLanNode (lan: BenchLan, init: LanNodeInit): Promise<LanNode> {
  const dir = join(init.dir, init.name)
  const cacheDir = join(dir, 'cache')
  await mkdir(cacheDir, { recursive: true })
  const upstream = init.upstreamUrl
  const config = {
    server: { host: '127.0.0.1', port: 8081 },
    cache: { dir: cacheDir, max_size_gb: init.maxSizeGb ?? 1000, min_free_gb: 0 },
    logging: { level: process.env.BENCH_LOG_LEVEL ?? 'warn' },
    rules: [
      { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', concurrency: init.conns, chunk_size: 0, min_size: 1 },
      { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy' },
      // The same blobs as plain files (--by-url): no digest before the download, keyed by URL.
      { name: 'files', path_prefix: '/files/', strip_prefix: true, upstream, strategy: 'parallel', concurrency: init.conns, chunk_size: 0, min_size: 1 }
    ],
    cluster: {
      enabled: init.cluster,
      name: 'bench',
      listen: [`/ip4/${init.host.ip}/tcp/${LIBP2P_PORT}`],
      peers: init.peers.filter(p => p.ip !== init.host.ip).map(p => `${p.ip}:${LIBP2P_PORT}`),
      mdns: false,
      key_file: init.keyFile,
      data_host: init.host.ip,
      data_port: DATA_PORT,
      data_tls: init.tls === true
    }
  }
  const configFile = join(dir, 'aimirror.yaml')
  await writeFile(configFile, stringify(config))
  const logFile = join(dir, 'node.log')
  // BENCH_NODE_ARGS: extra node flags for the nodes under test (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const flags = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(f => f !== '')
  const child = lan.spawn(init.host.ns, [init.nodeBin, ...flags, join(init.root, 'bin', 'aimirror.js'), 'start', '--config', configFile], { logFile, cwd: init.root })
  if (child.pid === undefined) throw new Error(`${init.name}: no pid`)
  const node: LanNode = { name: init.name, host: init.host, cacheDir, logFile, child, pid: child.pid, cluster: init.cluster }
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${init.name} exited before answering\n${logTail(logFile)}`)
    if (await getJson(lan, init.host.ns, `${NODE_URL}/health`).then(() => true, () => false)) return node
    await sleep(250)
  }
  throw new Error(`${init.name} did not answer /health within 60 s\n${logTail(logFile)}`)
}

/** Waits until every node counts all of them reachable members (static peers dialled, membership proven). */
export async function waitForCluster (lan: BenchLan, nodes: readonly LanNode[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (const n of nodes) {
    for (;;) {
      const view = await getJson<{ totals?: { reachable?: number } }>(lan, n.host.ns, `${NODE_URL}/cluster/stats`).catch(() => null)
      if ((view?.totals?.reachable ?? 0) >= nodes.length) break
      if (Date.now() > deadline) throw new Error(`${n.name} sees ${view?.totals?.reachable ?? 0} of ${nodes.length} nodes after ${timeoutMs} ms\n${logTail(n.logFile)}`)
      await sleep(500)
    }
  }
}

/** Where a node keeps a committed blob (see node/store/layout.ts). */
export function blobFile (node: LanNode, digest: string): string {
  return join(node.cacheDir, 'blobs', 'sha256', digest.slice(0, 2), digest)
}

/** Waits for the node to commit the blob (the last byte reaches the client a moment before the rename). */
export async function waitForCommit (node: LanNode, digest: string, size: number, timeoutMs = 30_000): Promise<void> {
  const file = blobFile(node, digest)
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (existsSync(file) && statSync(file).size === size) return
    await sleep(100)
  }
  throw new Error(`${node.name} did not commit ${digest.slice(0, 12)} within ${timeoutMs} ms`)
}

export async function getJson<T = unknown> (lan: BenchLan, ns: string, url: string): Promise<T> {
  return JSON.parse(await lan.exec(ns, ['curl', '-sf', '--max-time', '5', url], 10_000)) as T
}

export interface CurlTiming {
  status: number
  bytes: number
  /** sha256 hex of the body, when asked for (`sha256: true`). */
  sha256?: string
  /** Curl's request start → last byte, s. */
  totalS: number
  ttfbS: number
  /** Bench's t0 → curl exit, s (for downloads started together). */
  wallS: number
}

/**
 * One GET with curl inside a namespace, body to /dev/null (the same client for every row), with the
 * registry token `registryToken` got, if any. `sha256`: the body goes through sha256sum instead (a
 * body no digest check of the node's covers, such as a pass-through).
 */
export async function curlIn (lan: BenchLan, ns: string, url: string, timeoutMs: number, o: { token?: string | null; t0?: number; sha256?: boolean } = {}): Promise<CurlTiming> {
  const t0 = o.t0 ?? performance.now()
  const auth = o.token === undefined || o.token === null ? [] : ['-H', `Authorization: Bearer ${o.token}`]
  const sha = o.sha256 === true
  // With sha256 the body goes to sha256sum and the measurements to stderr, which joins its stdout.
  const curl = ['curl', '-s', '-o', sha ? '-' : '/dev/null', '-H', 'Accept-Encoding: identity', ...auth, '--max-time', String(Math.ceil(timeoutMs / 1000)),
    '-w', `${sha ? '%{stderr}' : ''}%{http_code} %{size_download} %{time_total} %{time_starttransfer}\\n`, url]
  const argv = sha ? ['bash', '-c', 'set -o pipefail; { "$@" 2>&3 | sha256sum; } 3>&1', 'curl-sha256', ...curl] : curl
  const out = await lan.exec(ns, argv, timeoutMs + 10_000).catch((err: unknown) => {
    // curl's exit code and what it measured say how the transfer failed (18: cut short, 28: timed out).
    const e = err as { code?: unknown, stdout?: string }
    throw new Error(`curl in ${ns} failed (exit ${String(e.code)}): ${e.stdout ?? ''} after ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  })
  const lines = out.trim().split('\n')
  const timing = lines.find(l => /^\d+ \d+ /.test(l)) ?? ''
  const digest = lines.map(l => /^([0-9a-f]{64}) /.exec(l)?.[1]).find(d => d !== undefined)
  const [status, bytes, total, ttfb] = timing.trim().split(' ').map(Number)
  return { status: status ?? 0, bytes: bytes ?? 0, sha256: digest, totalS: total ?? 0, ttfbS: ttfb ?? 0, wallS: (performance.now() - t0) / 1000 }
}

/**
 * The token a registry client gets before pulling `url` from the node: the node answers an anonymous
 * request with a Bearer challenge (as registries do); its token endpoint hands out an anonymous token
 * for the repository. null when the node does not challenge. Done before timing starts.
 */
export async function registryToken (lan: BenchLan, ns: string, url: string): Promise<string | null> {
  const headers = await lan.exec(ns, ['curl', '-s', '-o', '/dev/null', '-D', '-', '--max-time', '10', url], 20_000)
  const m = /^www-authenticate:\s*Bearer\s+(.*)$/im.exec(headers)
  if (m === null) return null
  const params = Object.fromEntries([...(m[1] as string).matchAll(/(\w+)="([^"]*)"/g)].map(p => [p[1], p[2]]))
  if (params.realm === undefined) throw new Error(`no realm in the challenge of ${url}`)
  const tokenUrl = new URL(params.realm)
  for (const k of ['service', 'scope']) if (params[k] !== undefined) tokenUrl.searchParams.set(k, params[k])
  const body = await getJson<{ token?: string; access_token?: string }>(lan, ns, tokenUrl.href)
  const token = body.token ?? body.access_token
  if (token === undefined) throw new Error(`no token from ${tokenUrl.href}`)
  return token
}

/**
 * nginx in a namespace serving `root` with sendfile on ip:8088: the plain-HTTP baseline between two
 * namespaces. Foreground, one process, everything it writes inside `dir`.
 */
export async function startNginxIn (lan: BenchLan, bin: string, host: LanHost, root: string, dir: string): Promise<{ url: string; child: ChildProcess }> {
  await mkdir(join(dir, 'logs'), { recursive: true })
  await mkdir(join(dir, 'tmp'), { recursive: true })
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(t => `  ${t}_temp_path ${join(dir, 'tmp', t)};`).join('\n')
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
${temp}
  server { listen ${host.ip}:8088; root ${root}; }
}
`
  const confFile = join(dir, 'nginx.conf')
  await writeFile(confFile, conf)
  const logFile = join(dir, 'logs', 'stdout.log')
  const child = lan.spawn(host.ns, [bin, '-p', dir, '-c', confFile, '-e', join(dir, 'logs', 'error.log')], { logFile })
  const url = `http://${host.ip}:8088`
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode})\n${logTail(logFile)}`)
    if (await lan.exec(host.ns, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${url}/`]).then(s => s !== '000', () => false)) return { url, child }
    await sleep(100)
  }
  throw new Error(`nginx did not answer ${url}\n${logTail(logFile)}`)
}

/** The Node static file server (cluster-static-main.ts) in a namespace on ip:8089, serving `dir`. */
export async function startStaticIn (lan: BenchLan, o: { nodeBin: string; root: string; host: LanHost; serve: string; logFile: string }): Promise<{ url: string; child: ChildProcess }> {
  const child = lan.spawn(o.host.ns, [o.nodeBin, join(o.root, 'bench', 'cluster-static-main.ts'), '--host', o.host.ip, '--port', '8089', '--root', o.serve], { logFile: o.logFile, cwd: o.root })
  const url = `http://${o.host.ip}:8089`
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`static server exited (${child.exitCode})\n${logTail(o.logFile)}`)
    if (await lan.exec(o.host.ns, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${url}/`]).then(s => s !== '000', () => false)) return { url, child }
    await sleep(100)
  }
  throw new Error(`static server did not answer ${url}\n${logTail(o.logFile)}`)
}

export interface UpstreamBlob { path: string; digest: string; size: number }
export interface LanUpstream {
  url: string
  blobs: Record<string, UpstreamBlob>
  stats: () => Promise<{ requests: number; bytesSent: number; byBlob: Record<string, number> }>
}

/** The throttled blob server (cluster-upstream-main.ts) in its own namespace, on the bridge. */
export async function startLanUpstream (lan: BenchLan, o: {
  nodeBin: string; root: string; dir: string; host: LanHost; perConn: number; aggregate: number; latencyMs: number
  blobs: ReadonlyArray<{ name: string; size: number; seed: number }>
}): Promise<LanUpstream> {
  const logFile = join(o.dir, 'upstream.log')
  const args = [o.nodeBin, join(o.root, 'bench', 'cluster-upstream-main.ts'), '--host', o.host.ip, '--port', '9000',
    '--per-conn', String(o.perConn), '--aggregate', String(o.aggregate), '--latency-ms', String(o.latencyMs),
    ...o.blobs.flatMap(b => ['--blob', `${b.name}=${b.size}:${b.seed}`])]
  const child = lan.spawn(o.host.ns, args, { logFile, cwd: o.root, stdin: 'pipe', pipeStdout: true })
  const stdout = child.stdout
  if (stdout === null) throw new Error('upstream stdout is not piped')
  // Digests of every blob are computed before it listens: a few seconds per GiB.
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`upstream did not start within 300 s\n${logTail(logFile)}`)) }, 300_000)
    const lines = createInterface({ input: stdout })
    lines.once('line', (line) => { clearTimeout(timer); lines.close(); resolve(line) })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`upstream exited (${code}) before starting\n${logTail(logFile)}`)) })
  })
  stdout.resume()
  const { url, blobs } = JSON.parse(first) as { url: string; blobs: Record<string, UpstreamBlob> }
  return {
    url,
    blobs,
    stats: async () => await getJson(lan, o.host.ns, `${url}/_stats`)
  }
}
