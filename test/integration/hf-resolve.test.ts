import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { lfsBytes, lfsSha256, startFakeHub } from '../fixtures/upstreams/hf-hub.ts'
import type { FakeHub, HubRepoSpec } from '../fixtures/upstreams/hf-hub.ts'
import { startHfNode } from '../fixtures/upstreams/hf-node.ts'
import type { HfNode } from '../fixtures/upstreams/hf-node.ts'

const C1 = '1111111111111111111111111111111111111111'
const C2 = '2222222222222222222222222222222222222222'
const WEIGHTS = { size: 300 * 1024, seed: 1 }
const SHA = lfsSha256(WEIGHTS.size, WEIGHTS.seed)
const CONFIG = '{"model_type": "tiny"}\n'

function repos (): HubRepoSpec[] {
  const files = { 'config.json': { content: CONFIG }, 'weights.bin': { lfs: WEIGHTS }, 'sub/vocab.txt': { content: 'hello\n' }, 'blob/notes.txt': { content: 'in a blob dir\n' } }
  return [
    { id: 'acme/tiny', commits: { [C1]: files, [C2]: { ...files, 'config.json': { content: '{"v":2}\n' } } }, refs: { main: C1 } },
    { id: 'other/copy', commits: { [C1]: { 'model.bin': { lfs: WEIGHTS } } }, refs: { main: C1 } },
    { id: 'acme/ds', type: 'dataset', commits: { [C1]: { 'data/train.csv': { content: 'a,b\n1,2\n' } } }, refs: { main: C1 } },
    { id: 'acme/gated', gated: true, commits: { [C1]: { 'weights.bin': { lfs: { size: 5000, seed: 9 } } } }, refs: { main: C1 } }
  ]
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const weightsBytes = (): Buffer => lfsBytes(WEIGHTS.size, WEIGHTS.seed).read(0, WEIGHTS.size)

async function get (node: HfNode, path: string, init: RequestInit = {}): Promise<{ status: number, headers: Headers, body: Buffer }> {
  const res = await fetch(node.url + path, { redirect: 'manual', ...init })
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) }
}

function noXet (headers: Headers): void {
  for (const name of headers.keys()) expect(name.startsWith('x-xet-')).toBe(false)
  expect(headers.get('link')).toBeNull()
}

describe('HF /resolve from a Hub-compatible server that keeps LFS files on its own host', () => {
  it('serves the file with the hub headers of the redirect, HEAD and GET', async () => {
    const hub = await startFakeHub({ repos: repos(), sameHostCdn: true })
    const node = await startHfNode(hub.url)
    try {
      const head = await get(node, '/acme/tiny/resolve/main/weights.bin', { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(head.headers.get('x-repo-commit')).toBe(C1)
      expect(head.headers.get('x-linked-size')).toBe(String(WEIGHTS.size))
      expect(head.headers.get('etag')).toBe(`"${SHA}"`)
      const r = await get(node, '/acme/tiny/resolve/main/weights.bin')
      expect(r.status).toBe(200)
      expect(sha256(r.body)).toBe(SHA)
      expect(hub.count(q => q.path.startsWith('/cdn-lfs/') && q.method === 'GET')).toBeGreaterThan(0)
    } finally {
      await node.stop()
      await hub.close()
    }
  })
})

describe('HF /resolve through the mirror', () => {
  let hub: FakeHub
  let node: HfNode

  beforeAll(async () => {
    hub = await startFakeHub({ repos: repos(), tokens: ['hf_good'] })
    node = await startHfNode(hub.url)
  })
  afterAll(async () => {
    await node.stop()
    await hub.close()
  })

  it('answers HEAD for an LFS file itself, with the hub headers and no redirect or Xet', async () => {
    const r = await get(node, '/acme/tiny/resolve/main/weights.bin', { method: 'HEAD' })
    expect(r.status).toBe(200)
    expect(r.headers.get('x-repo-commit')).toBe(C1)
    expect(r.headers.get('x-linked-etag')).toBe(`"${SHA}"`)
    expect(r.headers.get('x-linked-size')).toBe(String(WEIGHTS.size))
    expect(r.headers.get('etag')).toBe(`"${SHA}"`)
    expect(r.headers.get('content-length')).toBe(String(WEIGHTS.size))
    expect(r.headers.get('accept-ranges')).toBe('bytes')
    expect(r.headers.get('location')).toBeNull()
    noXet(r.headers)
  })

  it('serves the LFS bytes (verified) and then ranges of them with the same headers', async () => {
    const r = await get(node, '/acme/tiny/resolve/main/weights.bin')
    expect(r.status).toBe(200)
    expect(sha256(r.body)).toBe(SHA)
    expect(r.headers.get('x-repo-commit')).toBe(C1)
    noXet(r.headers)
    const part = await get(node, '/acme/tiny/resolve/main/weights.bin', { headers: { range: 'bytes=1000-1999' } })
    expect(part.status).toBe(206)
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${WEIGHTS.size}`)
    expect(part.headers.get('etag')).toBe(`"${SHA}"`)
    expect(part.headers.get('x-linked-etag')).toBe(`"${SHA}"`)
    expect(part.body.equals(weightsBytes().subarray(1000, 2000))).toBe(true)
  })

  it('keeps the same weights in another repository once: no second CDN download', async () => {
    await get(node, '/acme/tiny/resolve/main/weights.bin')
    const cdnBefore = hub.cdn.stats.byPath[`/lfs/${SHA}`]?.bytes ?? 0
    const r = await get(node, '/other/copy/resolve/main/model.bin')
    expect(r.status).toBe(200)
    expect(sha256(r.body)).toBe(SHA)
    expect(hub.cdn.stats.byPath[`/lfs/${SHA}`]?.bytes ?? 0).toBe(cdnBefore)
  })

  it('serves files kept in git byte for byte, with their git ETag, for models and datasets', async () => {
    const r = await get(node, '/acme/tiny/resolve/main/config.json')
    expect(r.status).toBe(200)
    expect(r.body.toString()).toBe(CONFIG)
    expect(r.headers.get('etag')).toMatch(/^"[0-9a-f]{40}"$/)
    expect(r.headers.get('x-repo-commit')).toBe(C1)
    expect(r.headers.get('content-length')).toBe(String(CONFIG.length))
    const ds = await get(node, '/datasets/acme/ds/resolve/main/data/train.csv')
    expect(ds.status).toBe(200)
    expect(ds.body.toString()).toBe('a,b\n1,2\n')
  })

  it('serves /blob/ links and /api/resolve-cache/ paths like /resolve/', async () => {
    const blob = await get(node, '/acme/tiny/blob/main/sub/vocab.txt')
    expect(blob.status).toBe(200)
    expect(blob.body.toString()).toBe('hello\n')
    const nested = await get(node, '/acme/tiny/blob/main/blob/notes.txt')
    expect(nested.status).toBe(200)
    expect(nested.body.toString()).toBe('in a blob dir\n')
    const rc = await get(node, `/api/resolve-cache/models/acme/tiny/${C1}/config.json?etag=%22x%22`)
    expect(rc.status).toBe(200)
    expect(rc.body.toString()).toBe(CONFIG)
    expect(rc.headers.get('x-repo-commit')).toBe(C1)
  })

  it('answers the JS client probe (Range 0-0, Xet file-info Accept) with a plain 206 and never asks the hub for Xet info', async () => {
    const r = await get(node, '/acme/tiny/resolve/main/weights.bin', { headers: { range: 'bytes=0-0', accept: 'application/vnd.xet-fileinfo+json, */*' } })
    expect(r.status).toBe(206)
    expect(r.headers.get('content-range')).toBe(`bytes 0-0/${WEIGHTS.size}`)
    expect(r.headers.get('content-type')).not.toContain('xet')
    expect(r.headers.get('etag')).toBe(`"${SHA}"`)
    expect(hub.count(q => (q.accept ?? '').includes('xet'))).toBe(0)
  })

  it('passes hub errors on exactly (status, X-Error-Code, X-Error-Message, body), HEAD and GET', async () => {
    const head = await get(node, '/acme/tiny/resolve/main/nope.txt', { method: 'HEAD' })
    expect(head.status).toBe(404)
    expect(head.headers.get('x-error-code')).toBe('EntryNotFound')
    expect(head.headers.get('x-repo-commit')).toBe(C1)
    const r = await get(node, '/acme/tiny/resolve/main/nope.txt')
    expect(r.status).toBe(404)
    expect(r.headers.get('x-error-message')).toBe('Entry not found')
    expect(JSON.parse(r.body.toString())).toEqual({ error: 'Entry not found' })
    const rev = await get(node, '/acme/tiny/resolve/nobranch/config.json', { method: 'HEAD' })
    expect(rev.status).toBe(404)
    expect(rev.headers.get('x-error-code')).toBe('RevisionNotFound')
    const repo = await get(node, '/acme/missing/resolve/main/config.json', { method: 'HEAD' })
    expect(repo.status).toBe(401)
    expect(repo.headers.get('x-error-code')).toBe('RepoNotFound')
  })

  it('serves gated content only to clients whose token the hub accepts', async () => {
    const path = '/acme/gated/resolve/main/weights.bin'
    expect((await get(node, path, { method: 'HEAD' })).status).toBe(401)
    const ok = await get(node, path, { headers: { authorization: 'Bearer hf_good' } })
    expect(ok.status).toBe(200)
    expect(ok.body.length).toBe(5000)
    // Cached now, but a client without a token, or with a wrong one, still gets the hub's refusal.
    const anon = await get(node, path)
    expect(anon.status).toBe(401)
    expect(anon.headers.get('x-error-code')).toBe('GatedRepo')
    expect(anon.body.length).toBeLessThan(1000)
    const wrong = await get(node, path, { headers: { authorization: 'Bearer hf_bad' } })
    expect(wrong.status).toBe(403)
    // The accepted token is remembered for a while: no new hub request.
    const before = hub.requests.length
    const again = await get(node, path, { headers: { authorization: 'Bearer hf_good' } })
    expect(again.status).toBe(200)
    expect(hub.requests.length).toBe(before)
  })
})

describe('HF credentials and logs', () => {
  it('never writes a client token to the log, whatever happens to the request', async () => {
    const lines: string[] = []
    const sink = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done() } })
    const hub = await startFakeHub({ repos: repos(), tokens: ['hf_good'] })
    const node = await startHfNode(hub.url, { logLevel: 'trace', logDestination: sink, rule: { metadata_ttl_s: 0 } })
    try {
      const auth = (t: string): RequestInit => ({ headers: { authorization: `Bearer ${t}` } })
      expect((await get(node, '/acme/gated/resolve/main/weights.bin', auth('hf_good'))).status).toBe(200)
      expect((await get(node, '/acme/gated/resolve/main/weights.bin', auth('hf_secret_wrong'))).status).toBe(403)
      expect((await get(node, `/api/models/acme/gated/tree/${C1}`, auth('hf_good'))).status).toBe(200)
      await hub.close()
      expect((await get(node, '/acme/gated/resolve/main/weights.bin', auth('hf_secret_wrong'))).status).toBe(502)
    } finally {
      await node.stop()
      await hub.close()
    }
    expect(lines.length).toBeGreaterThan(0)
    for (const line of lines) {
      expect(line).not.toContain('hf_good')
      expect(line).not.toContain('hf_secret_wrong')
    }
  })
})

describe('HF /resolve revisions, restarts and upstream outages', () => {
  let hub: FakeHub | null = null
  let node: HfNode | null = null
  afterEach(async () => {
    await node?.stop()
    await hub?.close()
    node = null
    hub = null
  })

  it('follows a moved branch after the TTL and keeps commit-addressed files immutable', async () => {
    hub = await startFakeHub({ repos: repos() })
    node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 0 } })
    expect((await get(node, '/acme/tiny/resolve/main/config.json')).headers.get('x-repo-commit')).toBe(C1)
    hub.setRef('acme/tiny', 'main', C2)
    const moved = await get(node, '/acme/tiny/resolve/main/config.json')
    expect(moved.headers.get('x-repo-commit')).toBe(C2)
    expect(moved.body.toString()).toBe('{"v":2}\n')
    const pinned = await get(node, `/acme/tiny/resolve/${C1}/config.json`)
    expect(pinned.body.toString()).toBe(CONFIG)
  })

  it('clients asking for the same file at once share one HEAD upstream', async () => {
    hub = await startFakeHub({ repos: repos() })
    node = await startHfNode(hub.url)
    hub.setLatency(200)
    const heads = await Promise.all(Array.from({ length: 6 }, async () => await get(node as HfNode, '/acme/tiny/resolve/main/weights.bin', { method: 'HEAD' })))
    expect(heads.map(h => h.headers.get('x-linked-etag'))).toEqual(Array(6).fill(`"${SHA}"`))
    expect(hub.count(q => q.method === 'HEAD' && q.path === '/acme/tiny/resolve/main/weights.bin')).toBe(1)
    hub.setLatency(0)
  })

  it('within the TTL a branch keeps its commit without asking the hub', async () => {
    hub = await startFakeHub({ repos: repos() })
    node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 3600 } })
    await get(node, '/acme/tiny/resolve/main/config.json')
    hub.setRef('acme/tiny', 'main', C2)
    const before = hub.requests.length
    const r = await get(node, '/acme/tiny/resolve/main/config.json', { method: 'HEAD' })
    expect(r.headers.get('x-repo-commit')).toBe(C1)
    expect(hub.requests.length).toBe(before)
  })

  it('serves cached files with the hub down, across a restart: by commit, and by branch as last known (stale)', async () => {
    hub = await startFakeHub({ repos: repos() })
    const cacheDir = await mkdtemp(join(tmpdir(), 'aimirror-hf-restart-'))
    const first = await startHfNode(hub.url, { cacheDir, rule: { metadata_ttl_s: 0 } })
    try {
      expect((await get(first, '/acme/tiny/resolve/main/weights.bin')).status).toBe(200)
      expect((await get(first, '/acme/tiny/resolve/main/config.json')).status).toBe(200)
      expect((await get(first, '/acme/tiny/resolve/main/nope.txt', { method: 'HEAD' })).status).toBe(404)
    } finally {
      await first.stop()
    }
    await hub.close()
    hub = null
    node = await startHfNode('http://127.0.0.1:9', { cacheDir, rule: { metadata_ttl_s: 0 } })
    try {
      const byCommit = await get(node, `/acme/tiny/resolve/${C1}/weights.bin`)
      expect(byCommit.status).toBe(200)
      expect(sha256(byCommit.body)).toBe(SHA)
      expect(byCommit.headers.get('x-aimirror-stale')).toBeNull()
      const byBranch = await get(node, '/acme/tiny/resolve/main/config.json')
      expect(byBranch.status).toBe(200)
      expect(byBranch.body.toString()).toBe(CONFIG)
      expect(byBranch.headers.get('x-repo-commit')).toBe(C1)
      expect(byBranch.headers.get('x-aimirror-stale')).toBe('1')
      // The hub's own 404 for that commit is replayed; a file never asked about is an upstream failure.
      const gone = await get(node, '/acme/tiny/resolve/main/nope.txt')
      expect(gone.status).toBe(404)
      expect(gone.headers.get('x-error-code')).toBe('EntryNotFound')
      expect(gone.headers.get('x-repo-commit')).toBe(C1)
      expect(gone.headers.get('x-aimirror-stale')).toBe('1')
      const unknown = await get(node, '/acme/tiny/resolve/main/other.txt', { method: 'HEAD' })
      expect(unknown.status).toBe(502)
    } finally {
      await node.stop()
      node = null
      await rm(cacheDir, { recursive: true, force: true })
    }
  })

  it('does not keep a client waiting on a slow hub when it knows the answer: the last one, marked stale', async () => {
    hub = await startFakeHub({ repos: repos() })
    node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 0 } })
    expect((await get(node, '/acme/tiny/resolve/main/config.json')).status).toBe(200)
    hub.setLatency(15_000)
    const t0 = Date.now()
    const r = await get(node, '/acme/tiny/resolve/main/config.json', { method: 'HEAD' })
    expect(Date.now() - t0).toBeLessThan(8000)
    expect(r.status).toBe(200)
    expect(r.headers.get('x-repo-commit')).toBe(C1)
    expect(r.headers.get('x-aimirror-stale')).toBe('1')
    hub.setLatency(0)
  }, 20_000)

  it('does not keep a client waiting on a slow hub for a file it knows is not there: the remembered 404', async () => {
    hub = await startFakeHub({ repos: repos() })
    const mirror = node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 0 } })
    expect((await get(mirror, '/acme/tiny/resolve/main/nope.txt', { method: 'HEAD' })).status).toBe(404)
    hub.setLatency(15_000)
    const t0 = Date.now()
    const r = await get(mirror, '/acme/tiny/resolve/main/nope.txt', { method: 'HEAD' })
    // The grace time (5 s), not the read timeout (10 s).
    expect(Date.now() - t0).toBeLessThan(8000)
    expect(r.status).toBe(404)
    expect(r.headers.get('x-aimirror-stale')).toBe('1')
    hub.setLatency(0)
  }, 20_000)

  it('once the hub failed to answer, answers what it knows at once until the hub answers again', async () => {
    hub = await startFakeHub({ repos: repos() })
    const mirror = node = await startHfNode(hub.url, { rule: { metadata_ttl_s: 0 }, server: { read_timeout_s: 1 } })
    for (const path of ['config.json', 'sub/vocab.txt']) expect((await get(mirror, `/acme/tiny/resolve/main/${path}`)).status).toBe(200)
    const timed = async (path: string): Promise<{ ms: number, stale: string | null }> => {
      const t0 = Date.now()
      const r = await get(mirror, `/acme/tiny/resolve/main/${path}`, { method: 'HEAD' })
      expect(r.status).toBe(200)
      return { ms: Date.now() - t0, stale: r.headers.get('x-aimirror-stale') }
    }
    // Hung: the HEAD upstream times out after the read timeout (1 s), and the last answer is served.
    hub.setLatency(30_000)
    expect(await timed('config.json')).toMatchObject({ stale: '1' })
    // The hub did not answer: the next file is not waited for.
    const next = await timed('sub/vocab.txt')
    expect(next.stale).toBe('1')
    expect(next.ms).toBeLessThan(500)
    // Still asked in the background: its first answer ends that.
    hub.setLatency(0)
    await timed('config.json')
    let fresh = false
    for (let i = 0; i < 50 && !fresh; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      fresh = (await timed('config.json')).stale === null
    }
    expect(fresh).toBe(true)
  }, 20_000)

  it('re-resolves an expired signed CDN URL in the middle of a download and finishes it', async () => {
    const big = { size: 3 << 20, seed: 5 }
    hub = await startFakeHub({
      repos: [{ id: 'acme/big', commits: { [C1]: { 'model.safetensors': { lfs: big } } }, refs: { main: C1 } }],
      urlTtlMs: 400,
      cdn: { perConnectionBps: 1 << 20 }
    })
    node = await startHfNode(hub.url, { rule: { chunk_size: 512 * 1024, concurrency: 2, min_size: 0 } })
    const r = await get(node, '/acme/big/resolve/main/model.safetensors')
    expect(r.status).toBe(200)
    expect(sha256(r.body)).toBe(lfsSha256(big.size, big.seed))
    expect(hub.cdn.stats.expired).toBeGreaterThan(0)
  }, 20_000)
})
