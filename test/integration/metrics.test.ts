import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import { until } from './fetch-helpers.ts'
import type { TestNode } from '../helpers/node.ts'
import { createHash } from 'node:crypto'

const SIZE = 2 * 1024 * 1024 + 5

/** Prometheus' text format: `name value` lines, comments left out. */
function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const [name, value] = line.split(' ')
    out.set(name as string, Number(value))
  }
  return out
}

describe('/metrics', () => {
  let files: FileServer
  let node: TestNode
  beforeAll(async () => {
    files = await startFileServer({ files: { '/f/a.bin': { size: SIZE, seed: 3 } } })
    node = await startTestNode({
      cache: { max_size_gb: 2 },
      rules: [{ name: 'f', path_prefix: '/f/', upstream: files.url, strategy: 'parallel', min_size: 0, concurrency: 4 }]
    })
  })
  afterAll(async () => {
    await node?.stop()
    await files?.close()
  })

  it('shows the node\'s cache and byte counts in Prometheus\' text format, as they change', async () => {
    const first = await send(node.url, { path: '/metrics' })
    expect(first.status).toBe(200)
    expect(first.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    const before = samples(first.body.toString())
    expect(before.get('aimirror_cache_blobs')).toBe(0)
    expect(before.get('aimirror_cache_max_bytes')).toBe(2 * 2 ** 30)
    expect(before.get('aimirror_bytes_from_upstream_total')).toBe(0)
    expect(before.get('aimirror_cluster_members')).toBe(0)
    expect(before.get('process_resident_memory_bytes')).toBeGreaterThan(10 << 20)
    const heapUsed = before.get('nodejs_heap_size_used_bytes') ?? 0
    expect(heapUsed).toBeGreaterThan(1 << 20)
    expect(heapUsed).toBeLessThanOrEqual(before.get('nodejs_heap_size_total_bytes') ?? 0)
    expect(before.get('nodejs_external_memory_bytes')).toBeGreaterThan(0)
    expect(first.body.toString()).toContain('# TYPE aimirror_cache_hits_total counter')

    const scrape = async (): Promise<Map<string, number>> => samples((await send(node.url, { path: '/metrics' })).body.toString())
    const get = async (): Promise<void> => {
      const got = await send(node.url, { path: '/f/a.bin' })
      expect(createHash('sha256').update(got.body).digest('hex')).toBe(generatedSha256(SIZE, 3))
    }
    await get()
    // Committed after its last byte went out: then the next request is a hit.
    await until(async () => (await scrape()).get('aimirror_cache_blobs') === 1)
    await get()
    const after = await scrape()
    expect(after.get('aimirror_cache_size_bytes')).toBe(SIZE)
    // At least the file (a last piece may be fetched twice, on two connections).
    expect(after.get('aimirror_bytes_from_upstream_total')).toBeGreaterThanOrEqual(SIZE)
    expect(after.get('aimirror_bytes_from_upstream_total')).toBeLessThan(SIZE * 1.2)
    expect(after.get('aimirror_cache_hits_total')).toBe(1)
    expect(after.get('aimirror_bytes_from_cache_total')).toBe(SIZE)
    expect(after.get('aimirror_downloads_active')).toBe(0)
  })

  it('answers GET and HEAD only', async () => {
    expect((await send(node.url, { path: '/metrics', method: 'HEAD' })).status).toBe(200)
    expect((await send(node.url, { path: '/metrics', method: 'POST' })).status).toBe(405)
  })
})
