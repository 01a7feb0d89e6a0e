import { spawn } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * The bench's child processes. Every child is tracked so that it is killed at the end, on failure,
 * on Ctrl-C and on exit; nothing outlives the run.
 */
export class Children {
  readonly #live = new Set<ChildProcess>()

  /**
   * Spawns with stderr (and stdout unless piped) appended to `logFile`, so no unread pipe can fill and
   * block the child. A piped stdin closes when the bench dies, which children may watch.
   */
  spawn (cmd: string, args: string[], o: { logFile: string; cwd?: string; stdin?: 'pipe' | 'ignore'; pipeStdout?: boolean }): ChildProcess {
    const fd = openSync(o.logFile, 'a')
    try {
      const stdio: StdioOptions = [o.stdin ?? 'ignore', o.pipeStdout === true ? 'pipe' : fd, fd]
      const child = spawn(cmd, args, { cwd: o.cwd, stdio, env: { ...process.env, NO_COLOR: '1' } })
      this.#live.add(child)
      child.once('exit', () => { this.#live.delete(child) })
      return child
    } finally {
      closeSync(fd)
    }
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop (child: ChildProcess, graceMs = 3000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = sleep(graceMs).then(() => 'timeout' as const)
    if (await Promise.race([exited.then(() => 'exited' as const), timer]) === 'timeout') {
      child.kill('SIGKILL')
      await exited
    }
  }

  async stopAll (): Promise<void> {
    await Promise.all([...this.#live].map(async (c) => { await this.stop(c) }))
  }

  /** Last resort from an 'exit' handler, where nothing async runs. */
  killAllNow (): void {
    for (const c of this.#live) c.kill('SIGKILL')
  }
}

/** A free TCP port on 127.0.0.1 (listen on 0, read, close). */
export async function freePort (): Promise<number> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const addr = srv.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  await new Promise<void>((resolve) => { srv.close(() => { resolve() }) })
  return port
}

/** Polls `url` until it answers 2xx (any status with anyStatus); fails early if `child` exits, with its log tail. */
export async function waitForHttp (url: string, o: { timeoutMs: number; child: ChildProcess; logFile: string; what: string; anyStatus?: boolean }): Promise<void> {
  const deadline = Date.now() + o.timeoutMs
  while (Date.now() < deadline) {
    if (o.child.exitCode !== null || o.child.signalCode !== null) {
      throw new Error(`${o.what} exited (${o.child.exitCode ?? o.child.signalCode}) before answering ${url}\n${logTail(o.logFile)}`)
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.ok || o.anyStatus === true) return
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`${o.what} did not answer ${url} within ${o.timeoutMs} ms\n${logTail(o.logFile)}`)
}

export function logTail (file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** Peak resident memory of a process while a scenario runs: VmRSS polled every 50 ms, plus VmHWM. */
export class RssSampler {
  readonly #pid: number
  #peakKiB = 0
  #cpuStart = 0
  #sysStart = 0
  #timer: NodeJS.Timeout | null = null

  constructor (pid: number) {
    this.#pid = pid
  }

  #read (field: 'VmRSS' | 'VmHWM'): number {
    try {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${this.#pid}/status`, 'utf8'))
      return m === null ? 0 : Number(m[1])
    } catch {
      return 0
    }
  }

  /** User + system CPU seconds the process has used so far (/proc/<pid>/stat, 100 ticks a second). */
  #cpuSeconds (): number {
    const t = this.#times()
    return t.user + t.sys
  }

  #times (): { user: number; sys: number } {
    try {
      const stat = readFileSync(`/proc/${this.#pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 }
    } catch {
      return { user: 0, sys: 0 }
    }
  }

  start (): void {
    this.#cpuStart = this.#cpuSeconds()
    this.#sysStart = this.#times().sys
    this.#peakKiB = this.#read('VmRSS')
    this.#timer = setInterval(() => { this.#peakKiB = Math.max(this.#peakKiB, this.#read('VmRSS')) }, 50)
  }

  /** Returns MiB: the peak seen in this window, and the process's lifetime peak; CPU seconds used in the window. */
  stop (): { peakMiB: number; lifetimeMiB: number; cpuS: number; sysS: number } {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#peakKiB = Math.max(this.#peakKiB, this.#read('VmRSS'))
    return { peakMiB: this.#peakKiB / 1024, lifetimeMiB: this.#read('VmHWM') / 1024, cpuS: this.#cpuSeconds() - this.#cpuStart, sysS: this.#times().sys - this.#sysStart }
  }
}
