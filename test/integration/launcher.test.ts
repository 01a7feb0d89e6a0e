import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const LAUNCHER = fileURLToPath(new URL('../../bin/aimirror.js', import.meta.url))

/** The command line and environment the launched process runs with once it settled (after its re-exec, same pid). */
async function launched (args: string[], dir: string, extraEnv: Record<string, string> = {}): Promise<{ argv: string[], env: string[] }> {
  const env: Record<string, string | undefined> = { ...process.env, XDG_CACHE_HOME: join(dir, 'xdg'), AIMIRROR_CONFIG: '', ...extraEnv }
  delete env.AIMIRROR_TUNED
  delete env.AIMIRROR_NO_TUNE
  if (extraEnv.MALLOC_ARENA_MAX === undefined) delete env.MALLOC_ARENA_MAX
  const child = spawn(process.execPath, [LAUNCHER, ...args, '--port', '0', '--cache-dir', join(dir, 'cache'), '--log-level', 'info'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  try {
    // Until the re-exec shows, or the node listens untuned (it logs that).
    for (let i = 0; ; i++) {
      const argv = (await readFile(`/proc/${child.pid}/cmdline`, 'utf8')).split('\0')
      if (argv.includes('--expose-gc') || out.includes('listening') || i >= 300) {
        return { argv, env: (await readFile(`/proc/${child.pid}/environ`, 'utf8')).split('\0') }
      }
      await sleep(50)
    }
  } finally {
    child.kill('SIGKILL')
    await new Promise(resolve => { if (child.exitCode !== null || child.signalCode !== null) resolve(null); else child.once('exit', resolve) })
  }
}

// The launcher re-executes Node with the memory flags for the node only; it needs /proc and execve.
describe.runIf(process.platform === 'linux' && typeof process.execve === 'function')('bin/aimirror.js', { timeout: 60_000 }, () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'aimirror-launcher-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('runs `start` and the default command with the tuned V8 flags', async () => {
    for (const args of [['start'], []]) {
      const { argv, env } = await launched(args, dir)
      expect(argv).toContain('--expose-gc')
      expect(argv).toContain('--max-semi-space-size=2')
      expect(argv).toContain('--heap-growing-percent=40')
      expect(env).toContain('MALLOC_ARENA_MAX=2')
    }
  })

  it("keeps the user's own malloc arena limit", async () => {
    const { argv, env } = await launched(['start'], dir, { MALLOC_ARENA_MAX: '4' })
    expect(argv).toContain('--expose-gc')
    expect(env).toContain('MALLOC_ARENA_MAX=4')
    expect(env).not.toContain('MALLOC_ARENA_MAX=2')
  })
})
