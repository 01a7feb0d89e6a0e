/**
 * `npm run bench` — starts the throttled upstream and the node under test as child processes, runs the
 * scenarios, prints one markdown table of ratios and raw numbers, and writes bench/results/latest.json.
 * Everything it starts is stopped at the end, on failure and on Ctrl-C. See bench/README.md.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeGeneratedFile } from '../test/fixtures/upstreams/file-server-content.ts'
import { USAGE, parseBenchArgs } from './args.ts'
import { Children, RssSampler } from './procs.ts'
import { startUpstream } from './upstream.ts'
import type { BenchFile } from './upstream.ts'
import { startNode } from './node-under-test.ts'
import { findNginx, startNginx } from './nginx.ts'
import type { Nginx } from './nginx.ts'
import { emptyRow, expectedSha } from './context.ts'
import type { BenchContext, Row } from './context.ts'
import { GOAL_RSS_MIB, SCENARIOS } from './scenarios.ts'
import { renderTable } from './report.ts'

const root = fileURLToPath(new URL('..', import.meta.url))

async function main (): Promise<number> {
  let parsed
  try {
    parsed = parseBenchArgs(process.argv.slice(2), process.env)
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  if (parsed === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const opts = parsed
  const wanted = new Set(opts.only.length > 0 ? opts.only : SCENARIOS.map((s) => s.id))
  if (wanted.has('warm')) wanted.add('cold') // warm means "after cold"
  const unknown = [...wanted].filter((id) => !SCENARIOS.some((s) => s.id === id))
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown scenario ${unknown.join(', ')}\n${USAGE}\n`)
    return 2
  }
  const scenarios = SCENARIOS.filter((s) => wanted.has(s.id))

  const nodeBin = existsSync(join(root, 'node_modules', '.bin', 'node')) ? join(root, 'node_modules', '.bin', 'node') : process.execPath
  const tmp = await mkdtemp(join(tmpdir(), 'aimirror-bench-'))
  const children = new Children()
  const onExit = (): void => { children.killAllNow() }
  const onSignal = (): void => {
    process.stderr.write('bench: interrupted, stopping children\n')
    void children.stopAll().finally(() => process.exit(130))
  }
  process.on('exit', onExit)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const log = (line: string): void => { process.stderr.write(`bench: ${line}\n`) }

  try {
    const files = {
      big: { path: '/files/big.bin', size: opts.size, seed: 1 },
      shared: { path: '/files/shared.bin', size: opts.size, seed: 2 },
      resume: { path: '/files/resume.bin', size: opts.size, seed: 3 },
      kill: { path: '/files/kill.bin', size: opts.size, seed: 4 },
      multi: Array.from({ length: opts.files }, (_, i): BenchFile => ({ path: `/files/multi-${i}.bin`, size: opts.fileSize, seed: 100 + i }))
    }
    const shas = new Map<string, string>()
    const sha = (f: BenchFile): string => {
      let s = shas.get(f.path)
      if (s === undefined) {
        s = expectedSha(f)
        shas.set(f.path, s)
      }
      return s
    }

    const upstream = await startUpstream(children, {
      nodeBin, root, tmp, perConn: opts.perConn, aggregate: opts.aggregate, latencyMs: opts.latencyMs,
      files: [files.big, files.shared, files.resume, ...(wanted.has('kill') ? [files.kill] : []), ...files.multi]
    })
    log(`upstream ${upstream.url} (pid ${upstream.child.pid ?? '?'})`)

    let nginx: Nginx | null = null
    const nginxBin = wanted.has('warm') ? findNginx() : null
    if (nginxBin !== null) {
      await mkdir(join(tmp, 'www', 'files'), { recursive: true })
      await writeGeneratedFile(join(tmp, 'www', files.big.path), files.big.size, files.big.seed)
      nginx = await startNginx(children, nginxBin, join(tmp, 'www'), join(tmp, 'nginx'))
      log(`nginx ${nginx.url}`)
    } else if (wanted.has('warm')) {
      log('nginx not installed: warm ratio will be n/a')
    }

    const nodeInit = { nodeBin, root, tmp, upstreamUrl: upstream.url, conns: opts.conns }
    const node = await startNode(children, nodeInit)
    log(`node ${node.url} (pid ${node.pid}), temp dir ${tmp}`)
    const ctx: BenchContext = {
      opts, upstream, node, nginx, files, sha, measured: { idealMbps: null },
      restartNode: async () => {
        ctx.node = await startNode(children, { ...nodeInit, build: false })
        log(`node restarted (pid ${ctx.node.pid})`)
      }
    }

    const rows: Row[] = []
    for (const s of scenarios) {
      const row = emptyRow(s.id, s.name(opts))
      log(`${row.name}…`)
      await upstream.reset()
      const sampler = new RssSampler(ctx.node.pid)
      sampler.start()
      try {
        await s.run(ctx, row)
      } catch (err) {
        row.error = err instanceof Error ? err.message : String(err)
        row.pass = false
      } finally {
        const rss = sampler.stop()
        if (s.usesNode) {
          row.rssMiB = rss.peakMiB
          // CPU the node spent: the load-independent cost of a scenario on a shared machine.
          row.notes += `${row.notes === '' ? '' : '; '}node CPU ${rss.cpuS.toFixed(1)} s`
          row.goal += `${row.goal === '' ? '' : ', '}RSS ≤ ${GOAL_RSS_MIB} MiB`
          if (rss.peakMiB > GOAL_RSS_MIB) row.pass = false
        }
      }
      log(`${row.name}: ${row.error ?? `${row.mbps?.toFixed(1) ?? '–'} MB/s`}`)
      rows.push(row)
    }

    const table = renderTable(rows, opts, GOAL_RSS_MIB)
    process.stdout.write(`\n${table}\n`)
    const resultsDir = join(root, 'bench', 'results')
    await mkdir(resultsDir, { recursive: true })
    await writeFile(join(resultsDir, 'latest.json'), `${JSON.stringify({
      date: new Date().toISOString(),
      options: opts,
      nginx: nginx !== null,
      rows
    }, null, 2)}\n`)
    log(`wrote ${join('bench', 'results', 'latest.json')}`)
    return rows.some((r) => r.error !== null) ? 1 : 0
  } finally {
    await children.stopAll()
    process.off('exit', onExit)
    if (opts.keep) log(`kept ${tmp}`)
    else await rm(tmp, { recursive: true, force: true })
  }
}

process.exitCode = await main()
