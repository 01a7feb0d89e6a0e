import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lfsSha256, startFakeHub } from '../../../fixtures/upstreams/hf-hub.ts'
import type { FakeHub, HubRepoSpec } from '../../../fixtures/upstreams/hf-hub.ts'
import { startHfNode } from '../../../fixtures/upstreams/hf-node.ts'
import type { HfNode } from '../../../fixtures/upstreams/hf-node.ts'
import { lfsFilesFromListing } from '../../../../node/handlers/hf/listing-meta.ts'
import { HfRecords } from '../../../../node/handlers/hf/records.ts'

const C1 = '1111111111111111111111111111111111111111'
const A = { size: 200 * 1024, seed: 3 }
const B = { size: 150 * 1024, seed: 4 }
const SHA_A = lfsSha256(A.size, A.seed)
const SHA_B = lfsSha256(B.size, B.seed)

function repos (): HubRepoSpec[] {
  return [{
    id: 'acme/m',
    commits: { [C1]: { 'config.json': { content: '{}\n' }, 'a.safetensors': { lfs: A }, 'sub/b.safetensors': { lfs: B } } },
    refs: { main: C1 }
  }]
}

describe('LFS metadata from listings', () => {
  it('takes LFS files with a sha256 and a plain path, nothing else', () => {
    const sha = 'ab'.repeat(32)
    const body = Buffer.from(JSON.stringify([
      { type: 'file', path: 'w.bin', size: 134, oid: 'c'.repeat(40), lfs: { oid: sha, size: 10, pointerSize: 134 } },
      { type: 'file', path: 'config.json', size: 3, oid: 'd'.repeat(40) },
      { type: 'directory', path: 'sub', oid: 'e'.repeat(40), size: 0 },
      { type: 'file', path: 'with space.bin', size: 134, oid: 'c'.repeat(40), lfs: { oid: sha, size: 10 } },
      { type: 'file', path: 'bad.bin', size: 134, oid: 'c'.repeat(40), lfs: { oid: 'xyz', size: 10 } },
      { type: 'file', path: '../up.bin', size: 134, oid: 'c'.repeat(40), lfs: { oid: sha, size: 10 } }
    ]))
    const got = lfsFilesFromListing(body, C1, 'public', 5)
    expect(got).toEqual([{
      path: 'w.bin',
      meta: { commit: C1, etag: `"${sha}"`, linkedEtag: `"${sha}"`, sha256: sha, size: 10, contentType: 'application/octet-stream', contentDisposition: null, scope: 'public', learnedAt: 5 }
    }])
    expect(lfsFilesFromListing(Buffer.from('{"error":"x"}'), C1, 'public')).toEqual([])
    expect(lfsFilesFromListing(Buffer.from('not json'), C1, 'public')).toEqual([])
  })

  it('keeps listed files in memory and writes one to disk when it is first asked for', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-hf-records-'))
    try {
      const repo = { type: 'model' as const, id: 'acme/m' }
      const listing = (sha: string, scope: 'public' | 'auth'): ReturnType<typeof lfsFilesFromListing> =>
        lfsFilesFromListing(Buffer.from(JSON.stringify(['a.bin', 'b.bin'].map(path => ({ type: 'file', path, size: 134, oid: 'c'.repeat(40), lfs: { oid: sha, size: 7 } })))), C1, scope)
      const records = new HfRecords({ dir })
      records.learnFiles(repo, listing('1'.repeat(64), 'public'))
      records.learnFiles(repo, listing('2'.repeat(64), 'auth'))
      expect((await records.getFile(repo, C1, 'a.bin'))?.sha256).toBe('1'.repeat(64))
      const again = new HfRecords({ dir })
      expect((await again.getFile(repo, C1, 'a.bin'))?.scope).toBe('public')
      expect(await again.getFile(repo, C1, 'b.bin')).toBeUndefined()
      // A record on disk came from the hub's own answer for the file: it wins over a listing.
      again.learnFiles(repo, listing('3'.repeat(64), 'public'))
      expect((await again.getFile(repo, C1, 'a.bin'))?.sha256).toBe('1'.repeat(64))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  describe('through the mirror', () => {
    let hub: FakeHub
    let node: HfNode
    const heads = (path: string): number => hub.count(r => r.method === 'HEAD' && r.path.endsWith(path))
    const sha256 = (b: ArrayBuffer): string => createHash('sha256').update(Buffer.from(b)).digest('hex')

    beforeAll(async () => {
      hub = await startFakeHub({ repos: repos() })
      node = await startHfNode(hub.url)
    })
    afterAll(async () => {
      await node.stop()
      await hub.close()
    })

    it('serves an LFS file listed in a tree at a commit without a HEAD upstream, verified by its sha256', async () => {
      const tree = await fetch(`${node.url}/api/models/acme/m/tree/${C1}?recursive=True&expand=False`)
      expect(tree.status).toBe(200)
      await tree.arrayBuffer()
      const head = await fetch(`${node.url}/acme/m/resolve/${C1}/a.safetensors`, { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(head.headers.get('x-linked-etag')).toBe(`"${SHA_A}"`)
      expect(head.headers.get('x-repo-commit')).toBe(C1)
      expect(head.headers.get('content-length')).toBe(String(A.size))
      const get = await fetch(`${node.url}/acme/m/resolve/${C1}/a.safetensors`)
      expect(get.status).toBe(200)
      expect(sha256(await get.arrayBuffer())).toBe(SHA_A)
      expect(heads('/a.safetensors')).toBe(0)
    })

    it('learns the same from a paths-info answer at a commit', async () => {
      const info = await fetch(`${node.url}/api/models/acme/m/paths-info/${C1}`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paths: ['sub/b.safetensors'], expand: true })
      })
      expect(info.status).toBe(200)
      await info.arrayBuffer()
      const get = await fetch(`${node.url}/acme/m/resolve/${C1}/sub/b.safetensors`)
      expect(get.status).toBe(200)
      expect(get.headers.get('etag')).toBe(`"${SHA_B}"`)
      expect(sha256(await get.arrayBuffer())).toBe(SHA_B)
      expect(heads('/sub/b.safetensors')).toBe(0)
    })
  })
})
