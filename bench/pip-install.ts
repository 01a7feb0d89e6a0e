/**
 * `node bench/pip-install.ts` — `pip install transformers torch` (the real wheels from this machine's
 * wheelhouse) from a PyPI throttled to 1 MB/s per connection, in one run: direct, through the node cold,
 * through the node warm (same node, new venv), and a floor that installs the same wheels from local files
 * with no network (first and last: their spread is the noise). Each run is a fresh venv. Goals: cold wall ≤ 1.3 × floor; cold fetch phase (until pip
 * starts installing) ≥ 20 × faster than direct; warm wall within noise (≤ 1.1 ×) of the floor.
 * Prints a markdown table. Skips (exit 2) when the machine has no wheelhouse.
 *
 *   node bench/pip-install.ts [--quick] [--packages "transformers torch"] [--per-conn 1000000]
 *     [--aggregate 200000000] [--latency-ms 20] [--conns N] [--only floor,direct,cold,warm] [--keep]
 */
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { defaultsDocument } from '../config/defaults.ts'
import { parseConfig } from '../config/load.ts'
import { startNode } from './node-under-test.ts'
import type { NodeUnderTest } from './node-under-test.ts'
import { findWheelhouse, resolveWheels } from './pip-wheels.ts'
import type { BenchWheel } from './pip-wheels.ts'
import { makeVenv, timedPipInstall } from './pip-run.ts'
import type { PipResult } from './pip-run.ts'
import { pipTable } from './pip-report.ts'
import type { PipRun } from './pip-report.ts'
import { Children, RssSampler } from './procs.ts'
import { startUpstreamScript } from './upstream.ts'
import type { Upstream } from './upstream.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    packages: { type: 'string' },
    'per-conn': { type: 'string', default: '1000000' },
    aggregate: { type: 'string', default: '200000000' },
    'latency-ms': { type: 'string', default: '20' },
    conns: { type: 'string' },
    only: { type: 'string', default: 'floor,direct,cold,warm' },
    python: { type: 'string', default: 'python3' },
    keep: { type: 'boolean', default: false }
  }
})
const packages = (values.packages ?? (values.quick ? 'httpx typer numpy' : 'transformers torch')).split(/[\s,]+/).filter((p) => p !== '')
const perConn = Number(values['per-conn'])
const aggregate = Number(values.aggregate)
const only = new Set(values.only.split(','))
const log = (line: string): void => { process.stderr.write(`bench-pip: ${line}\n`) }

async function main (): Promise<number> {
  const python = values.python
  const house = await findWheelhouse(python)
  if (house === null) {
    log(`no local wheelhouse in \`${python} -m pip config list\` (find-links or file:// indexes): nothing to measure`)
    return 2
  }
  const tmp = await mkdtemp(join(tmpdir(), 'aimirror-bench-pip-'))
  const children = new Children()
  process.on('exit', () => { children.killAllNow() })
  let failed = true
  try {
    log(`resolving ${packages.join(' ')} from the wheelhouse (${[...house.findLinks, ...house.indexes].join(', ')})`)
    const metaDir = join(tmp, 'meta')
    await mkdir(metaDir)
    const wheels = await resolveWheels(python, house, packages, metaDir)
    const total = wheels.reduce((n, w) => n + w.size, 0)
    log(`${wheels.length} wheels, ${(total / 1e6).toFixed(1)} MB`)
    const findLinks = join(tmp, 'wheels')
    await mkdir(findLinks)
    // Copies, not links: the floor reads freshly written files, as pip reads the wheels it just downloaded.
    for (const w of wheels) await copyFile(w.path, join(findLinks, w.filename))

    const nodeBin = process.execPath
    const upstream = await startUpstreamScript(children, {
      nodeBin, root, tmp, script: 'pip-upstream-main.ts',
      args: ['--manifest', join(metaDir, 'wheels.json'), '--per-conn', String(perConn), '--aggregate', String(aggregate), '--latency-ms', values['latency-ms']]
    })
    // The embedded pypi-files rule's concurrency unless --conns says otherwise.
    const conns = values.conns === undefined ? embeddedFilesConcurrency() : Number(values.conns)
    const node = await startNode(children, {
      nodeBin, root, tmp, upstreamUrl: upstream.url, conns,
      rules: [
        { name: 'pypi-files', path_prefix: '/packages/', upstream: upstream.url, handler: 'pypi', strategy: 'parallel', min_size: 0, concurrency: conns },
        { name: 'pypi-simple', path_prefix: '/simple/', upstream: upstream.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: 600, content_rewrite: { targets: [upstream.url] } }
      ]
    })
    // Slowest honest case: every byte through one 1 MB/s connection, plus pip's own work.
    const timeoutMs = Math.round((total / perConn) * 2 * 1000 + 600_000)
    const runs: PipRun[] = []
    const measure = async (id: PipRun['id'], args: string[], watch: { upstream: Upstream, node?: NodeUnderTest } | null): Promise<void> => {
      const venv = join(tmp, `venv-${id}`)
      const venvPython = await makeVenv(python, venv)
      await watch?.upstream.reset()
      const rss = watch?.node === undefined ? null : new RssSampler(watch.node.pid)
      rss?.start()
      log(`${id}: pip install ${packages.join(' ')}`)
      let result: PipResult
      let peak: number | null
      try {
        result = await timedPipInstall(venvPython, [...args, ...packages], { logFile: join(tmp, `pip-${id}.log`), timeoutMs })
      } finally {
        peak = rss?.stop().peakMiB ?? null
      }
      const stats = watch === null ? null : await watch.upstream.stats()
      checkInstalled(id, result, wheels)
      runs.push({ id, wallS: result.wallS, fetchS: result.fetchS, upstreamBytes: stats?.bytesSent ?? null, upstreamRequests: stats?.requests ?? null, peakConnections: stats?.peakConnections ?? null, rssMiB: peak })
      log(`${id}: ${result.wallS.toFixed(1)} s, fetch phase ${result.fetchS?.toFixed(1) ?? '?'} s` + (stats === null ? '' : `, upstream ${(stats.bytesSent / 1e6).toFixed(1)} MB in ${stats.requests} requests`))
      await rm(venv, { recursive: true, force: true })
    }
    if (only.has('floor')) await measure('floor', ['--no-index', '--find-links', findLinks], null)
    if (only.has('direct')) await measure('direct', ['--index-url', `${upstream.url}/simple/`], { upstream })
    if (only.has('cold') || only.has('warm')) await measure('cold', ['--index-url', `${node.url}/simple/`], { upstream, node })
    if (only.has('warm')) await measure('warm', ['--index-url', `${node.url}/simple/`], { upstream, node })
    // A second floor at the end: on a shared machine the spread of the two is the run's noise.
    if (only.has('floor')) await measure('floor-end', ['--no-index', '--find-links', findLinks], null)
    process.stdout.write(pipTable(runs, { packages, wheels: wheels.length, totalBytes: total, perConn, aggregate, latencyMs: Number(values['latency-ms']), conns }) + '\n')
    failed = false
    return 0
  } finally {
    await children.stopAll()
    if (failed || values.keep) log(`logs kept in ${tmp}`)
    else await rm(tmp, { recursive: true, force: true })
  }
}

/** Every resolved wheel must be what pip installed: a run that took something else measured nothing. */
function checkInstalled (id: string, result: PipResult, wheels: readonly BenchWheel[]): void {
  const norm = (s: string): string => s.replace(/[-_.]+/g, '-').toLowerCase()
  const got = new Set(result.installed.map(norm))
  const missing = wheels.filter((w) => !got.has(norm(`${w.project}-${w.version}`)))
  if (missing.length > 0) throw new Error(`${id}: pip did not install ${missing.map((w) => `${w.project} ${w.version}`).join(', ')}`)
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  log(`failed: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
})

function embeddedFilesConcurrency (): number {
  const rule = parseConfig(defaultsDocument(), { env: {} }).rules.find(r => r.name === 'pypi-files')
  if (rule === undefined) throw new Error('the embedded defaults have no pypi-files rule')
  return rule.concurrency
}
