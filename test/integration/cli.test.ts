import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const MAIN = fileURLToPath(new URL('../../cli/main.ts', import.meta.url))

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function runCli (args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`cli timed out: ${stderr}`)) }, timeoutMs)
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }) })
  })
}

// Generous deadlines: each case starts Node processes, slow on a loaded 2-core machine.
describe('aimirror CLI', { timeout: 120_000 }, () => {
  let dir: string
  let env: Record<string, string>
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aimirror-cli-'))
    env = { XDG_CACHE_HOME: join(dir, 'xdg'), AIMIRROR_CONFIG: '', AIMIRROR_PORT: '', AIMIRROR_HOST: '' }
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('prints help and version', async () => {
    const help = await runCli(['--help'], env)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('aimirror config check')
    const version = await runCli(['--version'], env)
    expect(version.code).toBe(0)
    expect(version.stdout).toMatch(/^aimirror \d+\.\d+\.\d+/)
  })

  it('checks the embedded defaults', async () => {
    const run = await runCli(['config', 'check'], env)
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('config ok')
    expect(run.stdout).toContain('127.0.0.1:8081')
  })

  it('prints the effective config as YAML that loads again', async () => {
    const printed = await runCli(['config', 'print', '--port', '9123'], env)
    expect(printed.code).toBe(0)
    expect(printed.stdout).toMatch(/port: 9123/)
    const file = join(dir, 'printed.yaml')
    await writeFile(file, printed.stdout)
    const check = await runCli(['config', 'check', '--config', file], env)
    expect(check.code).toBe(0)
  })

  it('names every bad field of a config file and exits non-zero', async () => {
    const file = join(dir, 'bad.yaml')
    await writeFile(file, [
      'server:',
      '  port: "80a"',
      'cache:',
      '  sizee: 3',
      'rules:',
      '  - name: a',
      '    pattern: "/a/.*"',
      '    upstream: "https://example.com"',
      '    strategy: paralel',
      ''
    ].join('\n'))
    const run = await runCli(['config', 'check', '--config', file], env)
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('rules[0].strategy')
    expect(run.stderr).toContain('paralel')
    expect(run.stderr).toContain('server.port')
    expect(run.stderr).toContain('cache.sizee')
    expect(run.stderr).not.toMatch(/\n\s+at /) // no stack trace for a user's mistake
  })

  it('refuses a bad flag with one line', async () => {
    const run = await runCli(['--port', 'x'], env)
    expect(run.code).toBe(2)
    expect(run.stderr.trim().split('\n')).toHaveLength(1)
    expect(run.stderr).toContain('--port')
  })

  describe('a port or cache directory it cannot use', () => {
    let taken: Server
    let takenPort: number
    beforeEach(async () => {
      taken = createServer()
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
      takenPort = (taken.address() as AddressInfo).port
    })
    afterEach(async () => { await new Promise((resolve) => taken.close(resolve)) })

    async function startWith (config: string, clusterEnv: Record<string, string> = {}): Promise<Run> {
      const file = join(dir, 'node.yaml')
      await writeFile(file, config)
      // The deadline is the point: a node that failed to start must exit, not linger with half its parts.
      return await runCli(['start', '--config', file], { ...env, ...clusterEnv }, 45_000)
    }
    const cluster = (listenPort: number | string): string => [
      'cluster:', '  enabled: true', '  mdns: false', `  listen: ["/ip4/127.0.0.1/tcp/${listenPort}"]`, '  data_host: 127.0.0.1', '  data_port: 0', ''
    ].join('\n')
    function expectOneLine (run: Run, ...parts: string[]): void {
      expect(run.code, run.stderr).toBe(1)
      const lines = run.stderr.trim().split('\n').filter(l => !l.startsWith('{')) // JSON log lines aside
      expect(lines, run.stderr).toHaveLength(1)
      for (const part of parts) expect(lines[0]).toContain(part)
    }

    it('an API port in use: names server.port and exits, also with the cluster already started', async () => {
      const run = await startWith([
        `server: { host: 127.0.0.1, port: ${takenPort} }`, `cache: { dir: ${join(dir, 'cache')} }`, cluster(0)
      ].join('\n'))
      expectOneLine(run, `127.0.0.1:${takenPort}`, 'server.port', 'already in use')
    })

    it('a cluster port in use: names cluster.listen', async () => {
      const run = await startWith([
        'server: { host: 127.0.0.1, port: 0 }', `cache: { dir: ${join(dir, 'cache')} }`, cluster(takenPort)
      ].join('\n'))
      expectOneLine(run, 'cluster.listen', 'already in use')
    })

    it('a cache directory below a file: names cache.dir', async () => {
      await writeFile(join(dir, 'a-file'), 'x')
      const run = await startWith(['server: { host: 127.0.0.1, port: 0 }', `cache: { dir: ${join(dir, 'a-file', 'cache')} }`, ''].join('\n'))
      expectOneLine(run, 'cache.dir', 'not a directory')
    })
  })

  /** Starts the node as a process; resolves with its address once it printed it. */
  async function startProcess (args: string[]): Promise<{ child: ChildProcess, url: string, out: () => string, exited: Promise<number | null> }> {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no address printed: ${stdout}`)) }, 60_000)
      child.stdout?.on('data', () => {
        const m = /listening on (http:\/\/[^\s]+)/.exec(stdout)
        if (m?.[1] !== undefined) { clearTimeout(timer); resolve(m[1]) }
      })
    })
    return { child, url, out: () => stdout, exited }
  }

  it('on SIGHUP reopens logging.file (log rotation) and goes on serving', async () => {
    const log = join(dir, 'node.log')
    const config = join(dir, 'config.yaml')
    await writeFile(config, `server: { host: 127.0.0.1, port: 0 }\ncache: { dir: ${join(dir, 'cache')} }\nlogging: { level: info, file: ${log} }\n`)
    const { child, url, exited } = await startProcess(['--config', config])
    try {
      await rename(log, `${log}.1`)
      child.kill('SIGHUP')
      await new Promise(resolve => setTimeout(resolve, 300))
      // (Admin routes are not logged; a request for no rule is.)
      expect((await fetch(`${url}/after-rotation`)).status).toBe(404)
      await expect.poll(async () => await readFile(log, 'utf8').catch(() => ''), { timeout: 5000 }).toContain('/after-rotation')
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
  })

  it('starts itself again, in the same process, when its cache index is removed under it', async () => {
    const cache = join(dir, 'cache')
    const { child, out, exited } = await startProcess(['--port', '0', '--cache-dir', cache, '--log-level', 'warn'])
    try {
      await rm(cache, { recursive: true, force: true })
      // It prints its address again once started again (port 0: another port).
      await expect.poll(() => [...out().matchAll(/listening on (http:\/\/\S+)/g)].length, { timeout: 20_000 }).toBe(2)
      expect(out()).toContain('was removed while the node ran')
      const again = [...out().matchAll(/listening on (http:\/\/\S+)/g)][1]?.[1] as string
      expect((await fetch(`${again}/health`)).status).toBe(200)
      // The index is there again, and locked: a second node on the directory is refused.
      expect((await stat(join(cache, 'index'))).isDirectory()).toBe(true)
      const second = await runCli(['start', '--port', '0', '--cache-dir', cache])
      expect(second.code).toBe(1)
      expect(child.exitCode).toBe(null)
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
  })

  it('starts on the defaults, prints client settings, serves /health and stops on SIGTERM', async () => {
    const { child, url, out, exited } = await startProcess(['--port', '0', '--cache-dir', join(dir, 'cache'), '--log-level', 'warn'])
    const stdout = (): string => out()
    try {
      const health = await fetch(`${url}/health`)
      expect(health.status).toBe(200)
      expect(await health.json()).toMatchObject({ status: 'ok', active_downloads: 0, downloads: [] })
      const stats = await fetch(`${url}/stats`)
      const body = await stats.json() as { cache: Record<string, unknown> }
      expect(body.cache).toHaveProperty('file_count')
      expect(body.cache).toHaveProperty('total_size_mb')
      await new Promise((r) => setTimeout(r, 100))
      expect(stdout()).toContain('HF_ENDPOINT=')
      expect(stdout()).toContain('/simple/')
      expect(stdout()).toContain('registry-mirrors')
      const page = /What it is doing: (http:\/\/\S+\/dashboard)/.exec(stdout())?.[1]
      expect(page).toBeDefined()
      expect((await fetch(page as string)).headers.get('content-type')).toBe('text/html; charset=utf-8')
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
  })
})
