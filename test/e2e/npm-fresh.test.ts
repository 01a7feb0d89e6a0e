/**
 * npm (the machine's npm) asking for fresh metadata through the mirror: after a new version is
 * published upstream, `npm view --prefer-online` with a warm npm cache sees it although the mirror's
 * copy of the packument is still within its TTL (npm revalidates with a bare conditional request).
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startNpmRegistry } from '../fixtures/upstreams/npm-registry.ts'
import type { NpmRegistry } from '../fixtures/upstreams/npm-registry.ts'

const run = promisify(execFile)

let work: string
let reg: NpmRegistry | null = null
let node: TestNode | null = null

beforeEach(async () => { work = await mkdtemp(join(tmpdir(), 'aimirror-npm-fresh-')) })
afterEach(async () => {
  await node?.stop()
  await reg?.close()
  node = null
  reg = null
  await rm(work, { recursive: true, force: true })
})

async function npmView (registry: string, ...flags: string[]): Promise<string> {
  const { stdout } = await run('npm', ['view', 'tiny-b', 'version', '--registry', registry, '--cache', join(work, 'cache'),
    '--update-notifier=false', '--fetch-retries=0', ...flags], {
    cwd: work,
    timeout: 40_000,
    env: { ...process.env, npm_config_userconfig: join(work, 'npmrc'), npm_config_loglevel: 'warn' }
  })
  return stdout.trim()
}

describe('npm --prefer-online through the mirror', () => {
  it('sees a version published after the mirror cached the packument', async () => {
    reg = await startNpmRegistry([{ name: 'tiny-b', version: '1.0.0' }])
    node = await startTestNode({
      rules: [{ name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: reg.url, handler: 'npm', strategy: 'proxy', metadata_ttl_s: 600 }]
    })
    await writeFile(join(work, 'npmrc'), '')
    const registry = `${node.url}/npm/`
    expect(await npmView(registry)).toBe('1.0.0')
    reg.publish({ name: 'tiny-b', version: '1.1.0' })
    expect(await npmView(registry, '--prefer-online')).toBe('1.1.0')
  }, 60_000)
})
