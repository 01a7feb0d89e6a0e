/**
 * pip (the machine's python3 -m pip) installing packages with dependencies through the mirror from a fake
 * PyPI whose file links point at a second host: PEP 691 JSON with PEP 658 metadata, HTML without it, and
 * a second install with the upstream stopped, served from the cache.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startPypiIndex } from '../fixtures/upstreams/pypi-index.ts'
import type { PypiIndex } from '../fixtures/upstreams/pypi-index.ts'

const run = promisify(execFile)

let work: string
let pypi: PypiIndex | null = null
let node: TestNode | null = null

beforeEach(async () => { work = await mkdtemp(join(tmpdir(), 'aimirror-pip-')) })
afterEach(async () => {
  await node?.stop()
  await pypi?.close()
  node = null
  pypi = null
  await rm(work, { recursive: true, force: true })
})

async function pipInstall (mirror: string, target: string, ...specs: string[]): Promise<string> {
  const { stdout } = await run('python3', ['-m', 'pip', '--isolated', '--disable-pip-version-check', '--no-cache-dir', 'install',
    '--no-input', '--timeout', '15', '--retries', '0', '--target', target, '--index-url', `${mirror}/simple`, ...specs],
  { timeout: 60_000, env: { ...process.env, PIP_CONFIG_FILE: '/dev/null', PIP_NO_PYTHON_VERSION_WARNING: '1' } })
  return stdout
}

async function mirrorFor (up: PypiIndex, ttl: number): Promise<TestNode> {
  return await startTestNode({
    content_rewrite: { targets: [up.filesUrl] },
    rules: [
      { name: 'pypi-files', path_prefix: '/packages/', upstream: up.filesUrl, handler: 'pypi', strategy: 'parallel', min_size: 0 },
      { name: 'pypi-simple', path_prefix: '/simple/', upstream: up.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: ttl }
    ]
  })
}

const PACKAGES = [
  { name: 'tinya', version: '1.0', requires: ['tiny_b>=1.0'], requiresPython: '>=3.7' },
  { name: 'tiny-b', version: '1.0' },
  { name: 'tiny-b', version: '1.1', padBytes: 300_000 }
]

describe('pip through the mirror', () => {
  it('installs with PEP 691 + PEP 658, then again with the upstream stopped', async () => {
    pypi = await startPypiIndex({ packages: PACKAGES })
    node = await mirrorFor(pypi, 0)
    await pipInstall(node.url, join(work, 't1'), 'tinya')
    expect(await readFile(join(work, 't1', 'tinya', '__init__.py'), 'utf8')).toContain('1.0')
    expect(await readFile(join(work, 't1', 'tiny_b', '__init__.py'), 'utf8')).toContain('1.1')
    const files = pypi.seen.filter(s => s.listener === 'files').map(s => s.url)
    expect(files.some(u => u.endsWith('.whl.metadata'))).toBe(true)
    const pages = pypi.seen.filter(s => s.listener === 'index')
    expect(pages.every(s => /gzip/.test(String(s.headers['accept-encoding'])))).toBe(true)

    await pypi.close()
    pypi = null
    await pipInstall(node.url, join(work, 't2'), 'tinya')
    expect(await readFile(join(work, 't2', 'tiny_b', '__init__.py'), 'utf8')).toContain('1.1')
  }, 90_000)

  it('installs from HTML pages without PEP 658 metadata, revalidating pages with ETags', async () => {
    pypi = await startPypiIndex({ packages: PACKAGES, pep658: false, json: false })
    node = await mirrorFor(pypi, 0)
    await pipInstall(node.url, join(work, 't1'), 'tinya', 'tiny-b<1.1')
    expect(await readFile(join(work, 't1', 'tiny_b', '__init__.py'), 'utf8')).toContain('1.0')
    expect(pypi.seen.some(s => s.url.endsWith('.metadata'))).toBe(false)
    await pipInstall(node.url, join(work, 't2'), 'tinya')
    const revalidated = pypi.seen.filter(s => s.listener === 'index' && s.headers['if-none-match'] !== undefined)
    expect(revalidated.length).toBeGreaterThan(0)
    expect(await readFile(join(work, 't2', 'tiny_b', '__init__.py'), 'utf8')).toContain('1.1')
  }, 90_000)
})

// An office whose line is down: the index takes connections and never answers. pip asks for every page
// with `max-age=0`; the mirror waits 5 s for the first, then serves what it has at once.
describe('pip through the mirror, the index away', () => {
  it('installs from cached pages without waiting on each of them', async () => {
    const many = [...PACKAGES, ...['c', 'd', 'e', 'f'].map(n => ({ name: `tiny-${n}`, version: '1.0' }))]
    pypi = await startPypiIndex({ packages: many })
    node = await mirrorFor(pypi, 0)
    const specs = ['tinya', 'tiny-c', 'tiny-d', 'tiny-e', 'tiny-f']
    await pipInstall(node.url, join(work, 't1'), ...specs)
    pypi.settings.hang = true
    const t0 = Date.now()
    await pipInstall(node.url, join(work, 't2'), ...specs)
    const seconds = (Date.now() - t0) / 1000
    for (const name of ['tinya', 'tiny_b', 'tiny_f']) expect(await readFile(join(work, 't2', name, '__init__.py'), 'utf8')).toContain('1.')
    // Six pages: waiting 5 s on each would take 30 s.
    expect(seconds).toBeLessThan(18)
  }, 120_000)
})

// pip sends `Cache-Control: max-age=0` for index pages: a release published upstream after the mirror
// cached the project's page is installed right away, although the mirror's copy is within its TTL.
describe('pip through the mirror, fresh index pages', () => {
  it('installs a release published while the mirror\'s page is within its TTL', async () => {
    pypi = await startPypiIndex({ packages: [{ name: 'tiny-b', version: '1.0' }] })
    node = await startTestNode({
      content_rewrite: { targets: [pypi.filesUrl] },
      rules: [
        { name: 'pypi-files', path_prefix: '/packages/', upstream: pypi.filesUrl, handler: 'pypi', strategy: 'parallel', min_size: 0 },
        { name: 'pypi-simple', path_prefix: '/simple/', upstream: pypi.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: 600 }
      ]
    })
    await pipInstall(node.url, join(work, 't1'), 'tiny-b')
    expect(await readFile(join(work, 't1', 'tiny_b', '__init__.py'), 'utf8')).toContain('1.0')
    pypi.addPackage({ name: 'tiny-b', version: '1.1' })
    await pipInstall(node.url, join(work, 't2'), 'tiny-b')
    expect(await readFile(join(work, 't2', 'tiny_b', '__init__.py'), 'utf8')).toContain('1.1')
  }, 90_000)
})
