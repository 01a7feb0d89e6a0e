/**
 * Python huggingface_hub (2.0.0 and 1.33.0, with hf_xet installed) through the mirror against a fake hub
 * that redirects LFS files to a signed CDN, announces Xet (headers, Link relations, xetHash in trees),
 * gates a repository and paginates trees. Needs the machine's local wheelhouse (/opt/pypi/files or
 * /opt/wheels) for the clients; skipped cleanly without it.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lfsSha256, startFakeHub } from '../fixtures/upstreams/hf-hub.ts'
import type { FakeHub, HubRepoSpec } from '../fixtures/upstreams/hf-hub.ts'
import { startCutProxy } from '../fixtures/upstreams/hf-cut-proxy.ts'
import { startHfNode } from '../fixtures/upstreams/hf-node.ts'
import type { HfNode } from '../fixtures/upstreams/hf-node.ts'
import { findWheelhouse, hfPython } from './hf/python-env.ts'

const VERSIONS = ['2.0.0', '1.33.0']
const SCRIPT = join(import.meta.dirname, 'hf', 'hf_client.py')
const C = '0123456789abcdef0123456789abcdef01234567'
const CONFIG = '{"model_type": "tiny", "hidden_size": 8}\n'
const WEIGHTS = { size: 300 * 1024, seed: 1 }
const BIG = { size: 3 << 20, seed: 2 }
const PARQUET = { size: 100_000, seed: 3 }
const TOKEN = 'hf_e2e_good_token'

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex')

function repos (): HubRepoSpec[] {
  return [
    {
      id: 'acme/tiny',
      commits: { [C]: { 'config.json': { content: CONFIG }, 'weights.bin': { lfs: WEIGHTS }, 'model.safetensors': { lfs: BIG }, 'sub/vocab.txt': { content: 'hello\nworld\n' } } },
      refs: { main: C }
    },
    { id: 'acme/tinyds', type: 'dataset', commits: { [C]: { 'data/train.csv': { content: 'a,b\n1,2\n' }, 'data/big.parquet': { lfs: PARQUET } } }, refs: { main: C } },
    { id: 'acme/gated', gated: true, commits: { [C]: { 'weights.bin': { lfs: { size: 5000, seed: 4 } } } }, refs: { main: C } }
  ]
}

const expectedModel = {
  'config.json': sha(CONFIG),
  'weights.bin': lfsSha256(WEIGHTS.size, WEIGHTS.seed),
  'model.safetensors': lfsSha256(BIG.size, BIG.seed),
  'sub/vocab.txt': sha('hello\nworld\n')
}
const expectedDataset = { 'data/train.csv': sha('a,b\n1,2\n'), 'data/big.parquet': lfsSha256(PARQUET.size, PARQUET.seed) }

interface PyResult { code: number, stdout: string, stderr: string }

async function py (python: string, args: string[], env: Record<string, string>): Promise<PyResult> {
  return await new Promise((resolve) => {
    execFile(python, args, {
      // A clean environment: no user token, no HF_HUB_DISABLE_XET, no proxies.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1', ...env },
      timeout: 60_000
    }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

async function pyJson (python: string, args: string[], env: Record<string, string>): Promise<Record<string, unknown>> {
  const r = await py(python, args, env)
  if (r.code !== 0) throw new Error(`python ${args.join(' ')} failed (${r.code}):\n${r.stderr.slice(-3000)}`)
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>
}

const xetTraffic = (hub: FakeHub): number => hub.count(r => r.path.includes('xet-read-token') || r.path.startsWith('/cas') || (r.accept ?? '').includes('xet'))

const wheelhouses = VERSIONS.map(findWheelhouse)
const haveWheelhouse = wheelhouses.every(w => w !== null)

describe.skipIf(!haveWheelhouse)('huggingface_hub through the mirror (needs the local wheelhouse)', () => {
  describe.each(VERSIONS.map((v, i) => [v, wheelhouses[i] as string]))('huggingface_hub %s with hf_xet', (version, wheelhouse) => {
    let python: string
    let hub: FakeHub
    let node: HfNode
    let work: string

    beforeAll(async () => {
      python = await hfPython(version, wheelhouse)
      work = await mkdtemp(join(tmpdir(), 'aimirror-hf-e2e-'))
      hub = await startFakeHub({ repos: repos(), tokens: [TOKEN], treePageSize: 2 })
      // Branches are asked about every time (metadata_ttl_s 0): the hung hub's case below sees every wait.
      node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 0 } })
    }, 240_000)
    afterAll(async () => {
      await node?.stop()
      await hub?.close()
      if (work !== undefined) await rm(work, { recursive: true, force: true })
    })

    const env = (endpoint: string, name: string): Record<string, string> =>
      ({ HF_ENDPOINT: endpoint, HF_HOME: join(work, name, 'home'), HF_HUB_CACHE: join(work, name, 'hub'), HOME: join(work, name) })

    it('without the mirror, hf_xet is active: the client asks the hub for a Xet token (the trap is real)', async () => {
      const r = await py(python, [SCRIPT, 'fetch', 'acme/tiny', 'weights.bin'], env(hub.url, 'direct'))
      expect(r.code).not.toBe(0)
      expect(hub.count(q => q.path.includes('xet-read-token'))).toBeGreaterThan(0)
    }, 60_000)

    it('downloads files, a model and a dataset snapshot, gated files with a token, all over plain HTTP through the mirror', async () => {
      const before = xetTraffic(hub)
      const out = await pyJson(python, [SCRIPT, 'suite', '--gated', TOKEN], env(node.url, 'first'))
      expect(out.version).toBe(version)
      expect(out.xet_available).toBe(true)
      expect(out.config).toBe(expectedModel['config.json'])
      expect(out.weights).toBe(expectedModel['weights.bin'])
      expect(out.model).toEqual(expectedModel)
      expect(out.dataset).toEqual(expectedDataset)
      expect(out.missing).toBe('RemoteEntryNotFoundError')
      expect(out.gated_anon).toBe('GatedRepoError')
      expect(out.gated_token).toBe(lfsSha256(5000, 4))
      expect(out.whoami).toBe('alice')
      expect(out.whoami_bad).toBe('HfHubHTTPError')
      expect(out.models).toEqual(['acme/gated', 'acme/tiny'])
      expect(xetTraffic(hub) - before).toBe(0)
      // The tree was paginated (2 entries a page) and every page went through the mirror.
      expect(hub.count(q => q.path.includes('/tree/') && q.path.includes('cursor='))).toBeGreaterThan(0)
    }, 60_000)

    it('`hf download` to a local dir', async () => {
      const hf = join(python, '..', 'hf')
      const dir = join(work, 'cli-out')
      const r = await py(hf, ['download', 'acme/tiny', '--local-dir', dir], env(node.url, 'cli'))
      expect(r.code, r.stderr).toBe(0)
      expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(CONFIG)
      expect(sha(await readFile(join(dir, 'model.safetensors')))).toBe(expectedModel['model.safetensors'])
      expect((await readdir(join(dir, 'sub')))).toEqual(['vocab.txt'])
    }, 60_000)

    it('a fresh client gets everything from the cache at once with the hub hung, not a wait per file', async () => {
      hub.setLatency(120_000)
      const t0 = Date.now()
      const out = await pyJson(python, [SCRIPT, 'suite'], env(node.url, 'hung'))
      const seconds = (Date.now() - t0) / 1000
      expect(out.model).toEqual(expectedModel)
      expect(out.dataset).toEqual(expectedDataset)
      // About 15 answers by branch (file HEADs, API pages): with 5 s of grace on each, over a minute.
      expect(seconds).toBeLessThan(30)
    }, 90_000)

    it('a fresh client gets everything again from the cache with the hub stopped', async () => {
      await hub.close()
      const out = await pyJson(python, [SCRIPT, 'suite'], env(node.url, 'offline'))
      expect(out.model).toEqual(expectedModel)
      expect(out.dataset).toEqual(expectedDataset)
      expect(out.config).toBe(expectedModel['config.json'])
      // The hub's 404 for a missing file is remembered and replayed, so the client's answer is the same.
      expect(out.missing).toBe('RemoteEntryNotFoundError')
    }, 60_000)
  })

  it('a download cut off in the middle resumes with Range and completes (both versions)', async () => {
    // huggingface_hub writes in 10 MiB chunks: a cut must come after one for the client to have something to resume.
    const huge = { size: 16 << 20, seed: 6 }
    const hub = await startFakeHub({ repos: [{ id: 'acme/huge', commits: { [C]: { 'model.safetensors': { lfs: huge } } }, refs: { main: C } }] })
    const node = await startHfNode(hub.url)
    const proxy = await startCutProxy(node.url, { pathContains: '/model.safetensors', afterBytes: 12 << 20, times: VERSIONS.length })
    const work = await mkdtemp(join(tmpdir(), 'aimirror-hf-resume-'))
    try {
      for (const [i, version] of VERSIONS.entries()) {
        const python = await hfPython(version, wheelhouses[i] as string)
        const out = await pyJson(python, [SCRIPT, 'fetch', 'acme/huge', 'model.safetensors'],
          { HF_ENDPOINT: proxy.url, HF_HOME: join(work, version), HF_HUB_CACHE: join(work, version, 'hub'), HOME: join(work, version) })
        expect(out.sha256).toBe(lfsSha256(huge.size, huge.seed))
        expect(proxy.cuts(), JSON.stringify(proxy.requests)).toBe(i + 1)
      }
      const resumed = proxy.requests.filter(r => r.line.includes('/model.safetensors') && r.range !== null)
      expect(resumed.length).toBe(VERSIONS.length)
      for (const r of resumed) expect(r.range).toMatch(/^bytes=[1-9]\d{6,}-$/)
    } finally {
      await proxy.close()
      await node.stop()
      await hub.close()
      await rm(work, { recursive: true, force: true })
    }
  }, 120_000)
})
