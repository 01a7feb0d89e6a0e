/**
 * npm (the machine's npm) installing packages with dependencies through the mirror mounted at /npm/:
 * `npm install` (full packuments), `npm ci` from the lockfile (abbreviated packuments; tarball URLs
 * rebuilt by npm at the registry root), and `npm ci` again with the registry stopped and a fresh npm
 * cache, served from the mirror's cache.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
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

beforeEach(async () => { work = await mkdtemp(join(tmpdir(), 'aimirror-npm-')) })
afterEach(async () => {
  await node?.stop()
  await reg?.close()
  node = null
  reg = null
  await rm(work, { recursive: true, force: true })
})

async function npm (cwd: string, registry: string, cache: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('npm', [...args, '--registry', registry, '--cache', cache, '--no-audit', '--no-fund',
    '--update-notifier=false', '--fetch-retries=0', '--prefer-online'], {
    cwd,
    timeout: 40_000,
    env: { ...process.env, npm_config_userconfig: join(work, 'npmrc'), npm_config_loglevel: 'warn' }
  })
  return stdout
}

const installed = async (dir: string, name: string): Promise<string> =>
  await readFile(join(dir, 'node_modules', ...name.split('/'), 'index.js'), 'utf8')

/** A node with the npm rules (tarballs also at the registry root, as lockfiles ask), packuments always revalidated. */
async function npmMirror (upstream: string): Promise<TestNode> {
  return await startTestNode({
    rules: [
      { name: 'npm-tarballs-root', pattern: '^/(?:@[\\w.-]+/)?[\\w.-]+/-/[^/]+\\.tgz$', upstream, handler: 'npm', strategy: 'parallel' },
      { name: 'npm-tarballs', path_prefix: '/npm/', pattern: '/-/[^/]+\\.tgz$', strip_prefix: true, upstream, handler: 'npm', strategy: 'parallel' },
      { name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream, handler: 'npm', strategy: 'proxy', metadata_ttl_s: 0 }
    ]
  })
}

/** An empty private package to install into, with an empty npmrc. */
async function newApp (): Promise<string> {
  await writeFile(join(work, 'npmrc'), '')
  const app = join(work, 'app')
  await mkdir(app)
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  return app
}

describe('npm through the mirror', () => {
  it('npm install, npm ci, then npm ci with the registry stopped', async () => {
    reg = await startNpmRegistry([
      { name: 'tiny-a', version: '1.0.0', dependencies: { 'tiny-b': '^1.0.0', '@acme/tiny-c': '^2.0.0' } },
      { name: 'tiny-b', version: '1.0.0' },
      { name: 'tiny-b', version: '1.1.0' },
      { name: '@acme/tiny-c', version: '2.0.0', padBytes: 50_000 }
    ])
    node = await npmMirror(reg.url)
    const registry = `${node.url}/npm/`
    const app = await newApp()
    await npm(app, registry, join(work, 'cache1'), 'install', 'tiny-a')
    expect(await installed(app, 'tiny-a')).toContain('tiny-a@1.0.0')
    expect(await installed(app, 'tiny-b')).toContain('tiny-b@1.1.0')
    expect(await installed(app, '@acme/tiny-c')).toContain('@acme/tiny-c@2.0.0')
    const lock = await readFile(join(app, 'package-lock.json'), 'utf8')
    expect(lock).not.toContain(reg.url)

    await rm(join(app, 'node_modules'), { recursive: true })
    await npm(app, registry, join(work, 'cache2'), 'ci')
    expect(await installed(app, 'tiny-b')).toContain('tiny-b@1.1.0')
    const accepts = reg.seen.filter(s => !s.url.includes('/-/')).map(s => String(s.headers.accept))
    expect(accepts.some(a => a.includes('application/vnd.npm.install-v1+json'))).toBe(true)
    expect(accepts.some(a => a === 'application/json')).toBe(true)

    await reg.close()
    reg = null
    await rm(join(app, 'node_modules'), { recursive: true })
    await npm(app, registry, join(work, 'cache3'), 'ci')
    expect(await installed(app, 'tiny-a')).toContain('tiny-a@1.0.0')
    expect(await installed(app, '@acme/tiny-c')).toContain('@acme/tiny-c@2.0.0')
  }, 90_000)
})

// An office whose line is down: the registry takes connections and never answers. The mirror waits 5 s
// for the first packument, then serves what it has at once.
describe('npm through the mirror, the registry away', () => {
  it('installs from cached packuments without waiting on each of them', async () => {
    reg = await startNpmRegistry([
      { name: 'tiny-a', version: '1.0.0', dependencies: { 'tiny-b': '^1.0.0', '@acme/tiny-c': '^2.0.0' } },
      { name: 'tiny-b', version: '1.0.0' },
      { name: '@acme/tiny-c', version: '2.0.0' },
      ...['d', 'e', 'f'].map(n => ({ name: `tiny-${n}`, version: '1.0.0' }))
    ])
    node = await npmMirror(reg.url)
    const registry = `${node.url}/npm/`
    const app = await newApp()
    const specs = ['tiny-a', 'tiny-d', 'tiny-e', 'tiny-f']
    await npm(app, registry, join(work, 'cache1'), 'install', ...specs)
    reg.settings.hang = true
    await rm(join(app, 'node_modules'), { recursive: true })
    await rm(join(app, 'package-lock.json'))
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    const t0 = Date.now()
    await npm(app, registry, join(work, 'cache2'), 'install', ...specs)
    const seconds = (Date.now() - t0) / 1000
    expect(await installed(app, '@acme/tiny-c')).toContain('@acme/tiny-c@2.0.0')
    expect(await installed(app, 'tiny-f')).toContain('tiny-f@1.0.0')
    // Six packuments: waiting 5 s on each would take 30 s.
    expect(seconds).toBeLessThan(18)
  }, 120_000)
})

// npm revalidates with a bare conditional request (--prefer-online): a version published upstream after
// the mirror cached the packument is seen although the mirror's copy is within its TTL.
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
