/**
 * One timed `pip install` in a fresh venv: wall time, and the fetch phase (until pip prints
 * "Installing collected packages": resolution and every download done, unpacking not yet begun).
 */
import { execFile, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { once } from 'node:events'
import { promisify } from 'node:util'
import { logTail } from './procs.ts'

const run = promisify(execFile)

export interface PipResult {
  wallS: number
  /** Start → "Installing collected packages" (null if pip never got there). */
  fetchS: number | null
  /** Distributions named by "Successfully installed". */
  installed: string[]
}

/**
 * pip reads /etc/pip.conf and the like even with --isolated; this environment makes it see only the
 * command line (no machine-wide find-links or local indexes that would bypass the upstream).
 */
export function pipEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', PIP_CONFIG_FILE: '/dev/null', PIP_NO_PYTHON_VERSION_WARNING: '1', LANG: 'C.UTF-8' }
  return env
}

/** A fresh venv (with the pip that ships with this Python); returns its python. */
export async function makeVenv (python: string, dir: string, o: { signal?: AbortSignal } = {}): Promise<string> {
  await rm(dir, { recursive: true, force: true })
  await run(python, ['-m', 'venv', dir], { timeout: 120_000, signal: o.signal, env: pipEnv() })
  return join(dir, 'bin', 'python')
}

/**
 * Runs `<venvPython> -m pip install <args>` with pip's output in `logFile`, timing the whole run and
 * the fetch phase. Throws with the log's tail when pip fails or outlives `timeoutMs`.
 */
export async function timedPipInstall (venvPython: string, args: readonly string[], o: { logFile: string, timeoutMs: number, signal?: AbortSignal }): Promise<PipResult> {
  const log = createWriteStream(o.logFile, { flags: 'a' })
  const full = ['-m', 'pip', 'install', '--isolated', '--no-cache-dir', '--disable-pip-version-check', '--no-input', '--progress-bar', 'off', '--timeout', '60', ...args]
  log.write(`$ ${venvPython} ${full.join(' ')}\n`)
  const t0 = performance.now()
  const child = spawn(venvPython, full, { env: pipEnv(), stdio: ['ignore', 'pipe', 'pipe'], signal: o.signal })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, o.timeoutMs)
  let fetchS: number | null = null
  let installed: string[] = []
  const lines = createInterface({ input: child.stdout })
  lines.on('line', (line) => {
    const s = (performance.now() - t0) / 1000
    log.write(`[${s.toFixed(2)}] ${line}\n`)
    if (fetchS === null && line.startsWith('Installing collected packages')) fetchS = s
    const m = /^Successfully installed (.*)$/.exec(line)
    if (m !== null) installed = (m[1] ?? '').trim().split(/\s+/)
  })
  child.stderr.pipe(log, { end: false })
  const [code, signal] = await once(child, 'close') as [number | null, string | null]
  const wallS = (performance.now() - t0) / 1000
  clearTimeout(timer)
  log.end()
  await once(log, 'close')
  if (code !== 0) throw new Error(`pip install exited with ${code ?? signal ?? '?'} after ${wallS.toFixed(1)} s\n${logTail(o.logFile)}`)
  return { wallS, fetchS, installed }
}
