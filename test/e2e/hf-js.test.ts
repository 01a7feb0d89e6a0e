/**
 * @huggingface/hub (downloadFile, fileDownloadInfo, listFiles, snapshotDownload with hubUrl) through the
 * mirror against a fake hub that announces Xet everywhere and redirects LFS files to a signed CDN.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { downloadFile, fileDownloadInfo, listFiles, snapshotDownload } from '@huggingface/hub'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lfsSha256, startFakeHub } from '../fixtures/upstreams/hf-hub.ts'
import type { FakeHub, HubRepoSpec } from '../fixtures/upstreams/hf-hub.ts'
import { startHfNode } from '../fixtures/upstreams/hf-node.ts'
import type { HfNode } from '../fixtures/upstreams/hf-node.ts'

const C = '0123456789abcdef0123456789abcdef01234567'
const CONFIG = '{"model_type": "tiny"}\n'
const WEIGHTS = { size: 300 * 1024, seed: 1 }
const SHARD = { size: 1 << 20, seed: 2 }

const sha = (b: string | Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex')

function repos (): HubRepoSpec[] {
  return [
    {
      id: 'acme/tiny',
      commits: { [C]: { 'config.json': { content: CONFIG }, 'weights.bin': { lfs: WEIGHTS }, 'shards/a.safetensors': { lfs: SHARD }, 'sub/vocab.txt': { content: 'hi\n' } } },
      refs: { main: C }
    },
    { id: 'acme/tinyds', type: 'dataset', commits: { [C]: { 'data/train.csv': { content: 'a,b\n' }, 'data/x.parquet': { lfs: { size: 70_000, seed: 3 } } } }, refs: { main: C } }
  ]
}

const expected: Record<string, string> = {
  'config.json': sha(CONFIG),
  'weights.bin': lfsSha256(WEIGHTS.size, WEIGHTS.seed),
  'shards/a.safetensors': lfsSha256(SHARD.size, SHARD.seed),
  'sub/vocab.txt': sha('hi\n')
}

async function snapshotShas (dir: string, paths: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const p of paths) out[p] = sha(await readFile(await realpath(join(dir, p))))
  return out
}

const xetTraffic = (hub: FakeHub): number => hub.count(r => r.path.includes('xet-read-token') || r.path.startsWith('/cas') || (r.accept ?? '').includes('xet'))

describe('@huggingface/hub through the mirror', () => {
  let hub: FakeHub
  let node: HfNode
  let work: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'aimirror-hf-js-'))
    hub = await startFakeHub({ repos: repos(), treePageSize: 2 })
    node = await startHfNode(hub.url)
  })
  afterAll(async () => {
    await node?.stop()
    await hub?.close()
    await rm(work, { recursive: true, force: true })
  })

  it('downloadFile and fileDownloadInfo get plain HTTP answers from the mirror (its Xet file-info probe is not answered with Xet)', async () => {
    const config = await downloadFile({ repo: 'acme/tiny', path: 'config.json', hubUrl: node.url })
    expect(await config?.text()).toBe(CONFIG)
    const weights = await downloadFile({ repo: 'acme/tiny', path: 'weights.bin', hubUrl: node.url })
    expect(sha(new Uint8Array(await (weights as Blob).arrayBuffer()))).toBe(expected['weights.bin'])
    const info = await fileDownloadInfo({ repo: 'acme/tiny', path: 'weights.bin', hubUrl: node.url })
    expect(info?.size).toBe(WEIGHTS.size)
    expect(info?.etag).toBe(`"${expected['weights.bin'] as string}"`)
    expect(info?.xet).toBeUndefined()
    expect(info?.url.startsWith(node.url)).toBe(true)
    expect(await downloadFile({ repo: 'acme/tiny', path: 'nope.txt', hubUrl: node.url })).toBeNull()
    expect(xetTraffic(hub)).toBe(0)
  })

  it('listFiles follows the paginated tree through the mirror without Xet hashes', async () => {
    const files = []
    for await (const f of listFiles({ repo: 'acme/tiny', recursive: true, hubUrl: node.url })) files.push(f)
    expect(files.filter(f => f.type === 'file').map(f => f.path).sort()).toEqual(Object.keys(expected).sort())
    for (const f of files) expect((f as { xetHash?: string }).xetHash).toBeUndefined()
    expect(hub.count(r => r.path.includes('cursor='))).toBeGreaterThan(0)
  })

  it('snapshotDownload of a model and a dataset, then again from the cache with the hub stopped', async () => {
    const first = await snapshotDownload({ repo: 'acme/tiny', hubUrl: node.url, cacheDir: join(work, 'a') })
    expect(await snapshotShas(first, Object.keys(expected))).toEqual(expected)
    const ds = await snapshotDownload({ repo: { type: 'dataset', name: 'acme/tinyds' }, hubUrl: node.url, cacheDir: join(work, 'a') })
    expect(sha(await readFile(join(ds, 'data/x.parquet')))).toBe(lfsSha256(70_000, 3))
    expect(xetTraffic(hub)).toBe(0)
    await hub.close()
    const again = await snapshotDownload({ repo: 'acme/tiny', hubUrl: node.url, cacheDir: join(work, 'b') })
    expect(await snapshotShas(again, Object.keys(expected))).toEqual(expected)
  })
})
