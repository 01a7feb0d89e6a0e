import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdir, writeFile } from 'node:fs/promises'
import type { ChildProcess } from 'node:child_process'
import { stringify } from 'yaml'
import { freePort, waitForHttp } from './procs.ts'
import type { Children } from './procs.ts'

export interface NodeUnderTest {
  url: string
  child: ChildProcess
  pid: number
  logFile: string
}

export interface NodeInit {
  nodeBin: string
  root: string
  tmp: string
  upstreamUrl: string
  conns: number
  /** Replaces the default single `parallel` rule. */
  rules?: ReadonlyArray<Record<string, unknown>>
  /** Compile `dist/` first (default true; a restart skips it). */
  build?: boolean
}

/** Compiles `dist/` as `npm start` does (no type check), so the bench runs what users run. */
export async function buildDist (nodeBin: string, root: string): Promise<void> {
  await promisify(execFile)(nodeBin, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--noCheck'], { cwd: root })
}

/**
 * Writes the bench config and starts the node as users do (`bin/aimirror.js start`: compiled code,
 * tuned memory settings) as a child process. `BENCH_NODE_ENTRY=cli/main.ts` runs the TypeScript source
 * instead; `BENCH_NODE_ARGS` adds Node flags (e.g. `--cpu-prof`). Port 0 would not be observable from
 * outside, so a free port is picked here and passed in the config.
 */
export async function startNode (children: Children, init: NodeInit): Promise<NodeUnderTest> {
  const port = await freePort()
  const cacheDir = join(init.tmp, 'cache')
  await mkdir(cacheDir, { recursive: true })
  const config = {
    server: { host: '127.0.0.1', port },
    cache: { dir: cacheDir, max_size_gb: 1000, min_free_gb: 0 },
    logging: { level: process.env.BENCH_LOG_LEVEL ?? 'warn' },
    rules: init.rules ?? [{
      name: 'bench',
      path_prefix: '/files/',
      upstream: init.upstreamUrl,
      strategy: 'parallel',
      min_size: 1,
      concurrency: init.conns,
      chunk_size: 0
    }]
  }
  const configFile = join(init.tmp, 'aimirror.yaml')
  await writeFile(configFile, stringify(config))
  const logFile = join(init.tmp, 'node.log')
  const entry = process.env.BENCH_NODE_ENTRY ?? 'bin/aimirror.js'
  if (entry === 'bin/aimirror.js' && init.build !== false) await buildDist(init.nodeBin, init.root)
  const flags = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter((f) => f !== '')
  const child = children.spawn(init.nodeBin, [...flags, join(init.root, ...entry.split('/')), 'start', '--config', configFile], { logFile, cwd: init.root })
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/health`, { timeoutMs: 30_000, child, logFile, what: 'aimirror node' })
  if (child.pid === undefined) throw new Error('aimirror node has no pid')
  return { url, child, pid: child.pid, logFile }
}
