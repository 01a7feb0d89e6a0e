/**
 * The cluster bench: node processes in network namespaces on one bridge, a throttled registry-like
 * upstream in its own namespace, five scenarios (peer fetch, N nodes on one cold blob, cold miss with
 * the cluster on vs off, N nodes on one cold blob with one frozen or killed part-way, 3 nodes one of
 * which cannot cache the blob), one markdown table of ratios against same-run baselines. Needs root (it
 * creates namespaces); everything it starts is stopped and every namespace deleted at the end, on
 * failure and on Ctrl-C. See bench/README.md, "Cluster bench".
 *   flock /tmp/aimirror-bench.lock npx node bench/cluster.ts [--size 1GiB] [--only peer,swarm,miss]
 */
import { existsSync, realpathSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { formatClusterKey } from '../protocol/membership.ts'
import { parseSize } from './args.ts'
import { Children } from './procs.ts'
import { buildDist } from './node-under-test.ts'
import { findNginx } from './nginx.ts'
import { BenchLan } from './cluster-lan.ts'
import { startLanUpstream } from './cluster-nodes.ts'
import { clusterRow, renderClusterTable } from './cluster-report.ts'
import type { ClusterBenchOptions, ClusterRow } from './cluster-report.ts'
import type { ClusterContext, ClusterScenario } from './cluster-scenario.ts'
import { peerScenario } from './cluster-peer.ts'
import { swarmScenario } from './cluster-swarm.ts'
import { missScenario } from './cluster-miss.ts'
import { faultScenario } from './cluster-fault.ts'
import { smallScenario } from './cluster-small.ts'

const SCENARIOS: readonly ClusterScenario[] = [peerScenario, swarmScenario, missScenario, faultScenario, smallScenario]
const root = fileURLToPath(new URL('..', import.meta.url))

const USAGE = `flock /tmp/aimirror-bench.lock npx node bench/cluster.ts [options]   (as root: it creates network namespaces)
  --size SIZE          blob size (default 1GiB; env BENCH_SIZE)
  --nodes N            nodes in the "same cold blob" scenario (default 4)
  --per-conn RATE      upstream limit per connection (default 4MB, per second)
  --aggregate RATE     upstream limit over all connections (default 200MB)
  --conns N            rule concurrency (default 64)
  --latency-ms N       upstream delay before headers (default 20)
  --timeout-s N        per-download deadline (default: 60 + 4 x nodes x size / aggregate)
  --only a,b           run only these scenarios: ${SCENARIOS.map(s => s.id).join(',')}
  --tls                HTTPS between the nodes (cluster.data_tls)
  --open               no cluster key: an open cluster (peers' in-flight bytes wait for the blob's digest)
  --by-url             ask for the blobs through a generic parallel rule (/files/…): no digest known
                       before the download, keyed by URL (shared between members of a keyed cluster only)
  --keep               keep the temp dir (configs, logs, caches)`

function parseOptions (argv: string[]): (ClusterBenchOptions & { timeoutMs: number }) | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string' },
      nodes: { type: 'string' },
      'per-conn': { type: 'string' },
      aggregate: { type: 'string' },
      conns: { type: 'string' },
      'latency-ms': { type: 'string' },
      'timeout-s': { type: 'string' },
      only: { type: 'string' },
      keep: { type: 'boolean' },
      tls: { type: 'boolean' },
      open: { type: 'boolean' },
      'by-url': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) return 'help'
  const int = (text: string | undefined, name: string, dflt: number, min: number): number => {
    if (text === undefined) return dflt
    const n = Number(text)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got "${text}"`)
    return n
  }
  const size = parseSize(values.size ?? process.env.BENCH_SIZE ?? '1GiB')
  const aggregate = parseSize(values.aggregate ?? '200MB')
  const nodes = int(values.nodes, 'nodes', 4, 2)
  const only = (values.only ?? '').split(',').map(s => s.trim()).filter(s => s !== '')
  const unknown = only.filter(id => !SCENARIOS.some(s => s.id === id))
  if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')}`)
  if (nodes > 7) throw new Error('--nodes: at most 7')
  return {
    size,
    nodes,
    perConn: parseSize(values['per-conn'] ?? '4MB'),
    aggregate,
    conns: int(values.conns, 'conns', 64, 1),
    latencyMs: int(values['latency-ms'], 'latency-ms', 20, 0),
    only,
    keep: values.keep === true,
    tls: values.tls === true,
    open: values.open === true,
    byUrl: values['by-url'] === true,
    timeoutMs: int(values['timeout-s'], 'timeout-s', Math.ceil(60 + 4 * nodes * size / Math.max(aggregate, 1e6)), 1) * 1000
  }
}

async function main (): Promise<number> {
  let opts
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`cluster bench: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  if (opts === 'help') { process.stdout.write(`${USAGE}\n`); return 0 }
  const why = BenchLan.unavailable()
  if (why !== null) { process.stderr.write(`cluster bench: ${why}\n`); return 2 }
  const scenarios = SCENARIOS.filter(s => opts.only.length === 0 || opts.only.includes(s.id))
  const log = (line: string): void => { process.stderr.write(`cluster bench: ${line}\n`) }

  const local = join(root, 'node_modules', '.bin', 'node')
  const nodeBin = existsSync(local) ? realpathSync(local) : process.execPath
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-cluster-bench-'))
  const children = new Children()
  const lan = new BenchLan(children)
  const onExit = (): void => { children.killAllNow() }
  const onSignal = (): void => {
    log('interrupted, stopping children and deleting namespaces')
    void children.stopAll().then(async () => { await lan.down() }).finally(() => process.exit(130))
  }
  process.on('exit', onExit)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    // Upstream, nodes A…, and one node with the cluster off.
    await lan.up(1 + opts.nodes + 1)
    log(`LAN up: ${lan.hosts.map(h => `${h.ns} ${h.ip}`).join(', ')}`)
    await buildDist(nodeBin, root)
    const keyFile = opts.open ? null : join(dir, 'cluster.key')
    if (keyFile !== null) await writeFile(keyFile, formatClusterKey(), { mode: 0o600 })
    const names = scenarios.flatMap(s => s.blobs)
    log(`upstream: generating ${names.length} blob(s) and their digests`)
    const upstream = await startLanUpstream(lan, {
      nodeBin, root, dir, host: lan.host(0), perConn: opts.perConn, aggregate: opts.aggregate, latencyMs: opts.latencyMs,
      blobs: names.map((name, i) => ({ name, size: opts.size, seed: 1000 + i }))
    })
    log(`upstream ${upstream.url}`)
    const ctx: ClusterContext = { opts, lan, children, upstream, nodeBin, root, dir, keyFile, nginxBin: findNginx(), timeoutMs: opts.timeoutMs, log }

    const rows: ClusterRow[] = []
    for (const s of scenarios) {
      const mine: ClusterRow[] = []
      log(`${s.id}…`)
      try {
        await s.run(ctx, mine)
      } catch (err) {
        const target = mine.at(-1) ?? mine[mine.push(clusterRow(s.id, s.id)) - 1] as ClusterRow
        target.error = err instanceof Error ? err.message : String(err)
        target.pass = false
      } finally {
        // A scenario that failed half-way may leave node processes behind; the next one needs their ports.
        for (const h of lan.hosts.slice(1)) await lan.kill(h.ns)
      }
      for (const r of mine) log(`${r.name}: ${r.error ?? `${r.ratio?.toFixed(2) ?? '–'} ${r.ratioOf}`}`)
      rows.push(...mine)
    }

    const table = renderClusterTable(rows, opts, availableParallelism())
    process.stdout.write(`\n${table}\n`)
    const resultsDir = join(root, 'bench', 'results')
    await mkdir(resultsDir, { recursive: true })
    await writeFile(join(resultsDir, 'cluster-latest.json'), `${JSON.stringify({ date: new Date().toISOString(), options: opts, rows }, null, 2)}\n`)
    log(`wrote ${join('bench', 'results', 'cluster-latest.json')}`)
    return rows.some(r => r.error !== null) ? 1 : 0
  } finally {
    await children.stopAll()
    await lan.down()
    process.off('exit', onExit)
    if (opts.keep) log(`kept ${dir}`)
    else await rm(dir, { recursive: true, force: true })
  }
}

process.exitCode = await main()
