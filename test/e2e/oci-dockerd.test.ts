import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run, stopChild } from '../fixtures/upstreams/oci-distribution.ts'
import { startOciEnv, USERS } from './oci-env.ts'
import type { OciEnv } from './oci-env.ts'

/** Debian's docker CLI (the one that matches its dockerd, not another on PATH). */
const DOCKER = '/usr/bin/docker'

/** dockerd 20.10 started by hand with `--registry-mirror` pointing at the mirror: no registry hint, `library/` names. */
describe('docker pull through a dockerd registry mirror', () => {
  let env: OciEnv
  let daemon: ChildProcess | null = null
  let dir = ''

  beforeAll(async () => {
    env = await startOciEnv()
    dir = join(env.work, 'dockerd')
    await mkdir(join(dir, 'cli'), { recursive: true })
    await writeFile(join(dir, 'daemon.json'), '{}')
    // The CLI hands docker.io credentials to the daemon, which presents them at the mirror's token endpoint.
    const auth = Buffer.from(`alice:${USERS.alice}`).toString('base64')
    await writeFile(join(dir, 'cli', 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth } } }))
    daemon = spawn('dockerd', [
      '--config-file', join(dir, 'daemon.json'),
      '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'),
      '-H', `unix://${join(dir, 'docker.sock')}`,
      '--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-masq=false', '--userland-proxy=false',
      '--registry-mirror', `http://${env.mirrorHost}`, '--insecure-registry', env.mirrorHost
    ], { stdio: 'ignore' })
    for (let i = 0; ; i++) {
      if ((await docker(['version'])).code === 0) break
      if (i > 150 || daemon.exitCode !== null) throw new Error('dockerd did not start')
      await sleep(100)
    }
  }, 60_000)

  afterAll(async () => {
    if (daemon !== null) await stopChild(daemon, 10_000)
    await env?.close()
  }, 30_000)

  async function docker (args: string[], creds = false): Promise<{ code: number | null, out: string }> {
    const r = await run(DOCKER, ['-H', `unix://${join(dir, 'docker.sock')}`, ...args], {
      timeoutMs: 60_000,
      env: { ...process.env, DOCKER_CONFIG: creds ? join(dir, 'cli') : join(dir, 'nocreds') }
    })
    return { code: r.code, out: r.stdout + r.stderr }
  }

  it('pulls a multi-arch, multi-layer official image by its short name', async () => {
    const r = await docker(['pull', 'tiny:1.0'])
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain(env.tiny.top.digest)
    const inspect = await docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'tiny:1.0'])
    expect(inspect.code, inspect.out).toBe(0)
    expect((JSON.parse(inspect.out) as string[]).length).toBe(2)
    expect(env.front.stats.count('HEAD', '/v2/library/tiny/manifests/1.0')).toBeGreaterThan(0)
  })

  it('pulls a private image with the docker.io credentials the CLI hands over', async () => {
    const denied = await docker(['pull', 'alice/secret:1.0'])
    expect(denied.code).not.toBe(0)
    const r = await docker(['pull', 'alice/secret:1.0'], true)
    expect(r.code, r.out).toBe(0)
  })

  it('pulls again from the cache with the upstream stopped', async () => {
    expect((await docker(['rmi', 'tiny:1.0'])).code).toBe(0)
    await env.stopUpstream()
    const r = await docker(['pull', 'tiny:1.0'])
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain(env.tiny.top.digest)
  })
})
