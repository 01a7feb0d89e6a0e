import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { gitBlobSha1, startFakeHub } from '../../../fixtures/upstreams/hf-hub.ts'
import type { FakeHub, HubRepoSpec } from '../../../fixtures/upstreams/hf-hub.ts'
import { startHfNode } from '../../../fixtures/upstreams/hf-node.ts'
import type { HfNode } from '../../../fixtures/upstreams/hf-node.ts'
import { fileIdentity } from '../../../../node/handlers/hf/resolve.ts'
import type { HfFileMeta } from '../../../../node/handlers/hf/file-meta.ts'

const C1 = '1111111111111111111111111111111111111111'
const C2 = '2222222222222222222222222222222222222222'
const CONFIG = '{"model_type": "tiny", "hidden": 64}\n'
const TOKENIZER = JSON.stringify({ vocab: Array.from({ length: 200 }, (_, i) => `tok${i}`) })
/** A git file of several pieces (the hub keeps files up to 10 MB in git). */
const VOCAB = Array.from({ length: 300_000 }, (_, i) => `word${i}`).join('\n')

function repos (): HubRepoSpec[] {
  return [
    { id: 'acme/a', commits: { [C1]: { 'config.json': { content: CONFIG }, 'tokenizer.json': { content: TOKENIZER }, 'vocab.txt': { content: VOCAB } }, [C2]: { 'config.json': { content: CONFIG } } }, refs: { main: C1 } },
    { id: 'other/b', commits: { [C1]: { 'config.json': { content: CONFIG } } }, refs: { main: C1 } }
  ]
}

/** The client's view: status and body, or `failed` when the transfer broke off. */
async function fetchFile (node: HfNode, path: string): Promise<{ status: number, body: string } | 'failed'> {
  try {
    const res = await fetch(node.url + path)
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()).toString('utf8') }
  } catch {
    return 'failed'
  }
}

function meta (etag: string, sha256: string | null = null): HfFileMeta {
  return { commit: C1, etag, linkedEtag: null, sha256, size: 3, contentType: 'text/plain', contentDisposition: null, scope: 'public', learnedAt: 0 }
}

describe('HF files kept in git', () => {
  let hub: FakeHub
  let node: HfNode
  const downloads = (path: string): number => hub.count(r => r.method === 'GET' && r.path.startsWith('/api/resolve-cache/') && r.path.includes(path))

  beforeAll(async () => {
    hub = await startFakeHub({ repos: repos() })
    node = await startHfNode(hub.url, { rule: { chunk_size: 256 * 1024, concurrency: 4, min_size: 1 } })
  })
  afterAll(async () => {
    await node.stop()
    await hub.close()
  })

  it('are keyed by their git blob id, else by commit and path', () => {
    const file = { repo: { type: 'model' as const, id: 'acme/a' }, revision: 'main', path: 'config.json' }
    const oid = gitBlobSha1(Buffer.from('abc'))
    expect(fileIdentity(file, meta(`"${oid}"`))).toEqual({ key: `git-sha1:${oid}`, sha256: null, expected: { algorithm: 'git-sha1', hex: oid } })
    expect(fileIdentity(file, meta(`W/"${oid.toUpperCase()}"`)).key).toBe(`git-sha1:${oid}`)
    expect(fileIdentity(file, meta('"not-a-blob-id"')).key).toBe(`hf:model:acme/a@${C1}/config.json`)
    expect(fileIdentity(file, meta('"x"', 'a'.repeat(64))).key).toBe(`sha256:${'a'.repeat(64)}`)
  })

  it('are verified against the git blob id: wrong bytes are never served whole nor cached', async () => {
    const wrong = TOKENIZER.replace('tok7"', 'tok8"')
    hub.tamper('acme/a', 'tokenizer.json', Buffer.from(wrong))
    const bad = await fetchFile(node, '/acme/a/resolve/main/tokenizer.json')
    if (bad !== 'failed') expect(bad.status === 200 && bad.body === wrong).toBe(false)
    hub.tamper('acme/a', 'tokenizer.json', null)
    const good = await fetchFile(node, '/acme/a/resolve/main/tokenizer.json')
    expect(good).toEqual({ status: 200, body: TOKENIZER })
    expect(downloads('tokenizer.json')).toBe(2)
    expect(await fetchFile(node, '/acme/a/resolve/main/tokenizer.json')).toEqual({ status: 200, body: TOKENIZER })
    expect(downloads('tokenizer.json')).toBe(2)
  })

  it('are verified when they come in several pieces over several connections', async () => {
    expect(Buffer.byteLength(VOCAB)).toBeGreaterThan(8 * 256 * 1024)
    const wrong = VOCAB.replace('word299999', 'word299998')
    hub.tamper('acme/a', 'vocab.txt', Buffer.from(wrong))
    const bad = await fetchFile(node, '/acme/a/resolve/main/vocab.txt')
    if (bad !== 'failed') expect(bad.status === 200 && bad.body === wrong).toBe(false)
    hub.tamper('acme/a', 'vocab.txt', null)
    expect(await fetchFile(node, '/acme/a/resolve/main/vocab.txt')).toEqual({ status: 200, body: VOCAB })
    expect(hub.count(r => r.path.includes('/vocab.txt') && r.range !== undefined)).toBeGreaterThan(8)
  })

  it('are stored once for every commit and repository that holds the same bytes', async () => {
    for (const path of ['/acme/a/resolve/main/config.json', `/acme/a/resolve/${C2}/config.json`, '/other/b/resolve/main/config.json']) {
      const r = await fetchFile(node, path)
      expect(r).toEqual({ status: 200, body: CONFIG })
    }
    expect(downloads('config.json')).toBe(1)
  })
})
