/**
 * pip (the machine's python3 -m pip) sends `Cache-Control: max-age=0` for index pages: a release
 * published upstream after the mirror cached the project's page is installed right away, although the
 * mirror's copy is still within its TTL.
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

beforeEach(async () => { work = await mkdtemp(join(tmpdir(), 'aimirror-pip-fresh-')) })
afterEach(async () => {
  await node?.stop()
  await pypi?.close()
  node = null
  pypi = null
  await rm(work, { recursive: true, force: true })
})

async function pipInstall (mirror: string, target: string, ...specs: string[]): Promise<void> {
  await run('python3', ['-m', 'pip', '--isolated', '--disable-pip-version-check', '--no-cache-dir', 'install',
    '--no-input', '--timeout', '15', '--retries', '0', '--target', target, '--index-url', `${mirror}/simple`, ...specs],
  { timeout: 60_000, env: { ...process.env, PIP_CONFIG_FILE: '/dev/null', PIP_NO_PYTHON_VERSION_WARNING: '1' } })
}

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
