import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const LAUNCHER = fileURLToPath(new URL('../../bin/aimirror.js', import.meta.url))

/** The command line the launched process runs with once it settled (after its re-exec, same pid). */
async function launchedArgs (args: string[], dir: string): Promise<string[]> {
  const env: Record<string, string | undefined> = { ...process.env, XDG_CACHE_HOME: join(dir, 'xdg'), AIMIRROR_CONFIG: '' }
  delete env.AIMIRROR_TUNED
  delete env.AIMIRROR_NO_TUNE
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
      if (argv.includes('--expose-gc') || out.includes('listening') || i >= 300) return argv
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
      const argv = await launchedArgs(args, dir)
      expect(argv).toContain('--expose-gc')
      expect(argv).toContain('--max-semi-space-size=2')
      expect(argv).toContain('--heap-growing-percent=100')
    }
  })
})
