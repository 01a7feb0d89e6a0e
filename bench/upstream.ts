import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { ChildProcess } from 'node:child_process'
import { logTail } from './procs.ts'
import type { Children } from './procs.ts'

export interface BenchFile {
  path: string
  size: number
  seed: number
}

export interface UpstreamStats {
  requests: number
  rangeRequests: number
  bytesSent: number
  byPath: Record<string, { requests: number; bytes: number }>
  peakConnections: number
}

/** The bench's handle on the upstream child process. */
export interface Upstream {
  url: string
  child: ChildProcess
  stats: () => Promise<UpstreamStats>
  reset: () => Promise<void>
}

export interface UpstreamInit {
  nodeBin: string
  root: string
  tmp: string
  perConn: number
  aggregate: number
  latencyMs: number
  files: readonly BenchFile[]
}

export async function startUpstream (children: Children, init: UpstreamInit): Promise<Upstream> {
  return await startUpstreamScript(children, {
    nodeBin: init.nodeBin,
    root: init.root,
    tmp: init.tmp,
    script: 'upstream-main.ts',
    args: [
      '--per-conn', String(init.perConn),
      '--aggregate', String(init.aggregate),
      '--latency-ms', String(init.latencyMs),
      ...init.files.flatMap((f) => ['--file', `${f.path}=${f.size}:${f.seed}`])
    ]
  })
}

/**
 * Starts another upstream script (`bench/<name>-main.ts`) that follows the same contract as
 * upstream-main.ts: one JSON line with `url` on stdout when listening, `/__stats` and `/__reset`,
 * exit when stdin closes.
 */
export async function startUpstreamScript (children: Children, init: { nodeBin: string, root: string, tmp: string, script: string, args: string[] }): Promise<Upstream> {
  const logFile = join(init.tmp, 'upstream.log')
  const child = children.spawn(init.nodeBin, [join(init.root, 'bench', init.script), ...init.args], { logFile, cwd: init.root, stdin: 'pipe', pipeStdout: true })
  const stdout = child.stdout
  if (stdout === null) throw new Error('upstream stdout is not piped')
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`upstream did not start within 20 s\n${logTail(logFile)}`)) }, 20_000)
    const lines = createInterface({ input: stdout })
    lines.once('line', (line) => {
      clearTimeout(timer)
      lines.close()
      resolve(line)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`upstream exited (${code}) before starting\n${logTail(logFile)}`))
    })
  })
  stdout.resume()
  const { url } = JSON.parse(first) as { url: string }
  return {
    url,
    child,
    stats: async () => await (await fetch(`${url}/__stats`)).json() as UpstreamStats,
    reset: async () => {
      const res = await fetch(`${url}/__reset`, { method: 'POST' })
      await res.arrayBuffer()
    }
  }
}
