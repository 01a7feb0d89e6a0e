import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run, stopChild } from '../fixtures/upstreams/oci-distribution.ts'
import { startOciEnv, USERS } from './oci-env.ts'
import type { OciEnv } from './oci-env.ts'

/** containerd 1.6 (`ctr images pull`) with a hosts.toml mirror: `?ns=` routing, no /v2/ ping, OAuth POST for credentials. */
describe('ctr images pull through the mirror', () => {
  let env: OciEnv
  let daemon: { child: ChildProcess, dir: string } | null = null

  beforeAll(async () => {
    env = await startOciEnv()
    const certs = join(env.work, 'certs.d')
    for (const [registry, server] of [['docker.io', 'https://registry-1.docker.io'], ['ghcr.io', 'https://ghcr.io']]) {
      await mkdir(join(certs, registry as string), { recursive: true })
      await writeFile(join(certs, registry as string, 'hosts.toml'),
        `server = "${server as string}"\n[host."http://${env.mirrorHost}"]\n  capabilities = ["pull", "resolve"]\n`)
    }
  }, 60_000)

  afterAll(async () => {
    await stopDaemon()
    await env?.close()
  })

  /** A containerd with its own fresh root: nothing cached on the client side. */
  async function startDaemon (name: string): Promise<void> {
    const dir = join(env.work, name)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'config.toml'), [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]', `  address = "${join(dir, 'c.sock')}"`,
      '[ttrpc]', `  address = "${join(dir, 'c.sock.ttrpc')}"`,
      '[debug]', `  address = "${join(dir, 'd.sock')}"`
    ].join('\n') + '\n')
    const child = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' })
    daemon = { child, dir }
    for (let i = 0; i < 100 && !existsSync(join(dir, 'c.sock')); i++) await sleep(50)
    if (!existsSync(join(dir, 'c.sock'))) throw new Error('containerd did not start')
  }

  async function stopDaemon (): Promise<void> {
    if (daemon === null) return
    await stopChild(daemon.child)
    await rm(daemon.dir, { recursive: true, force: true }).catch(() => {})
    daemon = null
  }

  async function ctr (args: string[]): Promise<{ code: number | null, out: string }> {
    const r = await run('ctr', ['--address', join(daemon?.dir ?? '', 'c.sock'), '-n', 'mirror', ...args], { timeoutMs: 60_000 })
    return { code: r.code, out: r.stdout + r.stderr }
  }

  const pull = async (ref: string, extra: string[] = []): Promise<{ code: number | null, out: string }> =>
    await ctr(['images', 'pull', '--hosts-dir', join(env.work, 'certs.d'), '--snapshotter', 'native', ...extra, ref])

  it('pulls and unpacks a multi-arch image from docker.io through the mirror', async () => {
    await startDaemon('ctrd-1')
    const r = await pull('docker.io/library/tiny:1.0')
    expect(r.code, r.out).toBe(0)
    const ls = await ctr(['images', 'ls', '-q'])
    expect(ls.out).toContain('docker.io/library/tiny:1.0')
    const check = await ctr(['images', 'check'])
    expect(check.out).toMatch(/docker\.io\/library\/tiny:1\.0\s.*complete/)
    expect(env.front.stats.count('GET', /^\/v2\/library\/tiny\/blobs\//)).toBeGreaterThan(0)
  })

  it('pulls another registry by ns and all platforms of it', async () => {
    const r = await pull('ghcr.io/owner/img:1.0', ['--all-platforms'])
    expect(r.code, r.out).toBe(0)
    const check = await ctr(['images', 'check'])
    expect(check.out).toMatch(/ghcr\.io\/owner\/img:1\.0\s.*complete/)
  })

  it('pulls a private image with --user (OAuth password grant at the mirror)', async () => {
    const denied = await pull('docker.io/alice/secret:1.0')
    expect(denied.code).not.toBe(0)
    const r = await pull('docker.io/alice/secret:1.0', ['--user', `alice:${USERS.alice}`])
    expect(r.code, r.out).toBe(0)
  })

  it('pulls again into a fresh containerd from the cache with the upstream stopped', async () => {
    await stopDaemon()
    await env.stopUpstream()
    await startDaemon('ctrd-2')
    const r = await pull('docker.io/library/tiny:1.0')
    expect(r.code, r.out).toBe(0)
    const check = await ctr(['images', 'check'])
    expect(check.out).toMatch(/docker\.io\/library\/tiny:1\.0\s.*complete/)
  })
})
