import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
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

  it('starts on the defaults, prints client settings, serves /health and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [MAIN, '--port', '0', '--cache-dir', join(dir, 'cache'), '--log-level', 'warn'], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no address printed: ${stdout}`)), 60_000)
        child.stdout.on('data', () => {
          const m = /listening on (http:\/\/[^\s]+)/.exec(stdout)
          if (m?.[1] !== undefined) { clearTimeout(timer); resolve(m[1]) }
        })
      })
      const health = await fetch(`${url}/health`)
      expect(health.status).toBe(200)
      expect(await health.json()).toMatchObject({ status: 'ok', active_downloads: 0, downloads: [] })
      const stats = await fetch(`${url}/stats`)
      const body = await stats.json() as { cache: Record<string, unknown> }
      expect(body.cache).toHaveProperty('file_count')
      expect(body.cache).toHaveProperty('total_size_mb')
      await new Promise((r) => setTimeout(r, 100))
      expect(stdout).toContain('HF_ENDPOINT=')
      expect(stdout).toContain('/simple/')
      expect(stdout).toContain('registry-mirrors')
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
  })
})
