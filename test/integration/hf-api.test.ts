import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lfsSha256, startFakeHub } from '../fixtures/upstreams/hf-hub.ts'
import type { FakeHub, HubRepoSpec } from '../fixtures/upstreams/hf-hub.ts'
import { startHfNode } from '../fixtures/upstreams/hf-node.ts'
import type { HfNode } from '../fixtures/upstreams/hf-node.ts'

const C1 = '1111111111111111111111111111111111111111'
const W = { size: 4096, seed: 3 }
/** A git file that looks like API JSON with Xet in it: it must still come back byte for byte. */
const TRICKY = '{ "xetHash" : "keep me",\n  "a": 1 }\n'

function repos (): HubRepoSpec[] {
  const files: Record<string, { content: string } | { lfs: typeof W }> = { 'config.json': { content: TRICKY } }
  for (let i = 0; i < 5; i++) files[`shard-${i}.bin`] = { lfs: { size: W.size + i, seed: i } }
  return [
    { id: 'acme/tiny', commits: { [C1]: files }, refs: { main: C1 } },
    { id: 'acme/ds', type: 'dataset', commits: { [C1]: { 'data/a.parquet': { lfs: W } } }, refs: { main: C1 } },
    { id: 'acme/gated', gated: true, commits: { [C1]: { 'w.bin': { lfs: W } } }, refs: { main: C1 } }
  ]
}

async function call (node: HfNode, path: string, init: RequestInit = {}): Promise<{ status: number, headers: Headers, text: string }> {
  const res = await fetch(node.url + path, { redirect: 'manual', ...init })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

describe('HF API through the mirror', () => {
  let hub: FakeHub
  let node: HfNode

  beforeAll(async () => {
    hub = await startFakeHub({ repos: repos(), tokens: ['hf_good'], treePageSize: 2 })
    node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 0 } })
  })
  afterAll(async () => {
    await node.stop()
    await hub.close()
  })

  it('pages the tree through the mirror: Link rewritten, xetHash gone from every page', async () => {
    let next: string | null = `/api/models/acme/tiny/tree/${C1}?recursive=true&expand=false`
    const paths: string[] = []
    let pages = 0
    while (next !== null) {
      const r = await call(node, next)
      expect(r.status).toBe(200)
      pages++
      expect(r.text).not.toContain('xetHash')
      for (const e of JSON.parse(r.text) as Array<{ path: string, lfs?: { oid: string } }>) {
        paths.push(e.path)
        if (e.path.startsWith('shard-')) expect(e.lfs?.oid).toMatch(/^[0-9a-f]{64}$/)
      }
      const link = r.headers.get('link')
      if (link === null) {
        next = null
      } else {
        const m = /<([^>]+)>;\s*rel="next"/.exec(link)
        expect(m?.[1]?.startsWith(node.url + '/api/models/acme/tiny/tree/')).toBe(true)
        next = (m?.[1] as string).slice(node.url.length)
      }
    }
    expect(pages).toBe(3)
    expect(paths.sort()).toEqual(['config.json', ...[0, 1, 2, 3, 4].map(i => `shard-${i}.bin`)])
  })

  it('answers repo info and revisions with the commit and without Xet headers', async () => {
    const r = await call(node, '/api/models/acme/tiny/revision/main')
    expect(r.status).toBe(200)
    expect((JSON.parse(r.text) as { sha: string }).sha).toBe(C1)
    const ds = await call(node, '/api/datasets/acme/ds?blobs=true')
    expect(ds.status).toBe(200)
    const sib = (JSON.parse(ds.text) as { siblings: Array<{ lfs: { sha256: string } }> }).siblings[0]
    expect(sib?.lfs.sha256).toBe(lfsSha256(W.size, W.seed))
    for (const name of r.headers.keys()) expect(name.startsWith('x-xet')).toBe(false)
  })

  it('forwards paths-info POST bodies (JSON and form) and cleans the answer', async () => {
    const json = await call(node, `/api/models/acme/tiny/paths-info/${C1}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paths: ['shard-1.bin', 'config.json'], expand: true })
    })
    expect(json.status).toBe(200)
    expect(json.text).not.toContain('xetHash')
    const entries = JSON.parse(json.text) as Array<{ path: string, lfs?: { oid: string } }>
    expect(entries.map(e => e.path).sort()).toEqual(['config.json', 'shard-1.bin'])
    expect(entries.find(e => e.path === 'shard-1.bin')?.lfs?.oid).toBe(lfsSha256(W.size + 1, 1))
    const form = await call(node, `/api/models/acme/tiny/paths-info/${C1}`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'paths=shard-2.bin&expand=false'
    })
    expect((JSON.parse(form.text) as Array<{ path: string }>).map(e => e.path)).toEqual(['shard-2.bin'])
    // Sent with its length, as clients send it: servers that read no chunked body would answer `[]`.
    const posts = hub.requests.filter(q => q.method === 'POST' && q.path.includes('/paths-info/'))
    expect(posts.slice(-2).map(q => q.length)).toEqual([String(Buffer.byteLength(JSON.stringify({ paths: ['shard-1.bin', 'config.json'], expand: true }))), '30'])
  })

  it('answers a paths-info body over its limit with a JSON 400, not a reset connection', async () => {
    const res = await call(node, `/api/models/acme/tiny/paths-info/${C1}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paths: ['x'.repeat(1_100_000)] })
    })
    expect(res.status).toBe(400)
    expect(JSON.parse(res.text)).toMatchObject({ error: 'ERR_BAD_REQUEST', message: 'Request body too large' })
  })

  it('passes hub errors on exactly and keeps gated API answers per credential', async () => {
    const missing = await call(node, '/api/models/acme/nothing/revision/main')
    expect(missing.status).toBe(401)
    expect(missing.headers.get('x-error-code')).toBe('RepoNotFound')
    const badRev = await call(node, '/api/models/acme/tiny/revision/nope')
    expect(badRev.status).toBe(404)
    expect(badRev.headers.get('x-error-code')).toBe('RevisionNotFound')
    const tree = `/api/models/acme/gated/tree/${C1}`
    expect((await call(node, tree, { headers: { authorization: 'Bearer hf_good' } })).status).toBe(200)
    const anon = await call(node, tree)
    expect(anon.status).toBe(401)
    expect(anon.headers.get('x-error-code')).toBe('GatedRepo')
  })

  it('keeps file bytes byte-exact under /resolve and /api/resolve-cache, JSON-looking or not', async () => {
    const a = await call(node, '/acme/tiny/resolve/main/config.json')
    expect(a.text).toBe(TRICKY)
    const b = await call(node, `/api/resolve-cache/models/acme/tiny/${C1}/config.json?etag=%22x%22`)
    expect(b.text).toBe(TRICKY)
  })
})

describe('HF API with the hub down', () => {
  it('serves the last answers stale (revision, tree pages, paths-info) and never invents answers', async () => {
    const hub = await startFakeHub({ repos: repos(), treePageSize: 4 })
    const node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 0 } })
    try {
      const tree = `/api/models/acme/tiny/tree/${C1}?recursive=true&expand=false`
      const body = JSON.stringify({ paths: ['shard-0.bin'] })
      const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body }
      const fresh = await Promise.all([call(node, '/api/models/acme/tiny/revision/main'), call(node, tree), call(node, `/api/models/acme/tiny/paths-info/${C1}`, post)])
      expect(fresh.map(r => r.status)).toEqual([200, 200, 200])
      await hub.close()
      const stale = await Promise.all([call(node, '/api/models/acme/tiny/revision/main'), call(node, tree), call(node, `/api/models/acme/tiny/paths-info/${C1}`, post)])
      expect(stale.map(r => r.status)).toEqual([200, 200, 200])
      expect(stale.map(r => r.headers.get('x-aimirror-stale'))).toEqual(['1', '1', '1'])
      expect(stale.map(r => r.text)).toEqual(fresh.map(r => r.text))
      expect(stale[1]?.headers.get('link')).toContain(node.url)
      const unknown = await call(node, '/api/models/acme/tiny/revision/other')
      expect(unknown.status).toBe(502)
    } finally {
      await node.stop()
      await hub.close()
    }
  })

  it('serves them stale as well when the hub answers 5xx, and relays the error for what it never answered', async () => {
    const hub = await startFakeHub({ repos: repos(), treePageSize: 4 })
    const node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 0 } })
    try {
      const tree = `/api/models/acme/tiny/tree/${C1}?recursive=true&expand=false`
      const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paths: ['shard-0.bin'] }) }
      const asks = async (): Promise<Array<{ status: number, text: string, headers: Headers }>> =>
        await Promise.all([call(node, '/api/models/acme/tiny/revision/main'), call(node, tree), call(node, `/api/models/acme/tiny/paths-info/${C1}`, post)])
      const fresh = await asks()
      expect(fresh.map(r => r.status)).toEqual([200, 200, 200])
      hub.failWith(500)
      const stale = await asks()
      expect(stale.map(r => r.status)).toEqual([200, 200, 200])
      expect(stale.map(r => r.headers.get('x-aimirror-stale'))).toEqual(['1', '1', '1'])
      expect(stale.map(r => r.text)).toEqual(fresh.map(r => r.text))
      const other = await call(node, `/api/models/acme/tiny/paths-info/${C1}`, { ...post, body: JSON.stringify({ paths: ['config.json'] }) })
      expect(other.status).toBeGreaterThanOrEqual(500)
      expect(other.headers.get('x-aimirror-stale')).toBeNull()
    } finally {
      await node.stop()
      await hub.close()
    }
  })
})
