import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../node/index.ts'
import type { TestNode } from '../helpers/node.ts'
import { RegistryContent } from '../fixtures/upstreams/oci-content.ts'
import { buildImage, MEDIA, sha256 } from '../fixtures/upstreams/oci-image.ts'
import type { BuiltImage } from '../fixtures/upstreams/oci-image.ts'
import { startOciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import type { OciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import { bearerParams, fetchRaw, PullClient, startMirror } from './oci-helpers.ts'

describe('registry mirror: tag freshness and upstream outages', () => {
  let reg: OciRegistry | undefined
  let node: TestNode | undefined
  let pull: (c: PullClient) => Promise<void> = async () => {}
  let img: BuiltImage | undefined

  afterEach(async () => {
    await node?.stop()
    await reg?.close()
    node = undefined
    reg = undefined
  })

  it('answers a fresh tag without upstream, revalidates a stale one with HEAD, and follows a moved tag', async () => {
    const content = new RegistryContent()
    const v1 = buildImage({ seed: 'v1', layers: [1000] })
    const v2 = buildImage({ seed: 'v2', layers: [1000] })
    content.add('library/app', 'latest', v1)
    content.add('library/app', 'v2', v2)
    reg = await startOciRegistry({ content })
    node = await startMirror(reg.url, { ttlS: 1 })
    const c = new PullClient(node.url)
    expect((await c.get('/v2/library/app/manifests/latest')).headers['docker-content-digest']).toBe(v1.top.digest)
    reg.stats.reset()
    expect((await c.get('/v2/library/app/manifests/latest')).body.equals(v1.top.bytes)).toBe(true)
    expect(reg.stats.requests.filter(r => r.path.includes('/manifests/'))).toEqual([])
    content.retag('library/app', 'latest', v2.top.digest)
    await new Promise(resolve => setTimeout(resolve, 1100))
    const moved = await c.get('/v2/library/app/manifests/latest')
    expect(moved.headers['docker-content-digest']).toBe(v2.top.digest)
    expect(moved.body.equals(v2.top.bytes)).toBe(true)
    expect(reg.stats.count('HEAD', '/v2/library/app/manifests/latest')).toBe(1)
    expect(reg.stats.count('GET', '/v2/library/app/manifests/latest')).toBe(0)
  })

  it('serves a second pull from the cache with the upstream stopped: tags stale with a warning, ping and tokens still answer', async () => {
    const content = new RegistryContent()
    const image = buildImage({ seed: 'offline', layers: [30_000, 1000], architectures: ['amd64', 'arm64'] })
    img = image
    content.add('library/tiny', '1.0', image)
    reg = await startOciRegistry({ content })
    node = await startMirror(reg.url, { ttlS: 0 })
    pull = async (c: PullClient): Promise<void> => {
      const index = await c.get('/v2/library/tiny/manifests/1.0')
      expect(index.body.equals(image.top.bytes)).toBe(true)
      const m = image.platforms.get('linux/amd64')
      expect((await c.get(`/v2/library/tiny/manifests/${m?.digest ?? ''}`)).body.equals(m?.bytes ?? Buffer.alloc(0))).toBe(true)
      for (const layer of image.amd64Layers) expect(sha256((await c.get(`/v2/library/tiny/blobs/${layer}`)).body)).toBe(layer)
    }
    await pull(new PullClient(node.url))
    await reg.close()
    reg = undefined
    // A restarted node (same cache directory) knows what it had.
    await node.node.stop()
    const restarted = createNode(node.config)
    await restarted.start()
    const url = restarted.address().url
    try {
      await offlinePull(url)
    } finally {
      await restarted.stop()
    }
  })

  async function offlinePull (url: string): Promise<void> {
    const ping = await fetchRaw(`${url}/v2/`)
    expect(ping.status).toBe(401)
    const c = bearerParams(ping.headers['www-authenticate'])
    expect((await fetchRaw(`${c.realm ?? ''}?service=${c.service ?? ''}&scope=repository:library/tiny:pull`)).status).toBe(200)

    const client = new PullClient(url)
    await pull(client)
    const tag = await client.get('/v2/library/tiny/manifests/1.0', { method: 'HEAD' })
    expect(tag.status).toBe(200)
    expect(tag.headers.warning).toBe('110 - "Response is Stale"')
    expect(tag.headers['x-aimirror-stale']).toBe('1')
    expect(tag.headers['docker-content-digest']).toBe(img?.top.digest)
    // Another client's Accept set (containerd's, say) is answered from the anonymous record when it takes
    // the recorded manifest's type; one that takes none of what was recorded is not.
    const other = await client.get('/v2/library/tiny/manifests/1.0', { method: 'HEAD', accept: [MEDIA.ociIndex, MEDIA.dockerList] })
    expect(other.status).toBe(200)
    expect(other.headers['docker-content-digest']).toBe(img?.top.digest)
    expect(other.headers['x-aimirror-stale']).toBe('1')
    expect((await client.get('/v2/library/tiny/manifests/1.0', { method: 'HEAD', accept: [MEDIA.dockerManifest] })).status).toBe(502)
    // Something never seen is an upstream failure, not a 404.
    const unknown = await client.get('/v2/library/tiny/manifests/2.0')
    expect(unknown.status).toBe(502)
    // In the distribution spec's shape too: registry clients show only its `errors`.
    expect(JSON.parse(unknown.body.toString('utf8'))).toMatchObject({ error: 'ERR_UPSTREAM_UNREACHABLE', errors: [{ code: 'UNAVAILABLE' }] })
  }

  it('once the registry did not answer a tag in time, answers the other tags it knows at once until it answers again', async () => {
    const content = new RegistryContent()
    const a = buildImage({ seed: 'away-a', layers: [1000] })
    const b = buildImage({ seed: 'away-b', layers: [1000] })
    content.add('library/a', '1', a)
    content.add('library/b', '1', b)
    reg = await startOciRegistry({ content })
    node = await startMirror(reg.url, { ttlS: 0 })
    const c = new PullClient(node.url)
    for (const repo of ['a', 'b']) expect((await c.get(`/v2/library/${repo}/manifests/1`)).status).toBe(200)
    const timed = async (repo: string): Promise<{ ms: number, stale: string | undefined, digest: string | undefined }> => {
      const t0 = Date.now()
      const r = await c.get(`/v2/library/${repo}/manifests/1`)
      expect(r.status).toBe(200)
      return { ms: Date.now() - t0, stale: r.headers['x-aimirror-stale'], digest: r.headers['docker-content-digest'] }
    }
    reg.configure({ latencyMs: 60_000 })
    // The first tag waits (the read timeout, or the 10 s grace time), then is answered as last known.
    expect(await timed('a')).toMatchObject({ stale: '1', digest: a.top.digest })
    // The registry did not answer: the next tag is not waited for.
    const next = await timed('b')
    expect(next).toMatchObject({ stale: '1', digest: b.top.digest })
    expect(next.ms).toBeLessThan(1000)
    // Still asked in the background: its first answer ends that.
    reg.configure({ latencyMs: 0 })
    let fresh = false
    for (let i = 0; i < 50 && !fresh; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      fresh = (await timed('a')).stale === undefined
    }
    expect(fresh).toBe(true)
  }, 30_000)

  it('resolves a tag with GET and its hash when the registry gives no digest on HEAD, then serves it from the cache', async () => {
    const content = new RegistryContent()
    content.digestOnHead = false
    const image = buildImage({ seed: 'nohead', layers: [300] })
    content.add('library/app', '1.0', image)
    reg = await startOciRegistry({ content })
    node = await startMirror(reg.url)
    const c = new PullClient(node.url)
    const head = await c.get('/v2/library/app/manifests/1.0', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['docker-content-digest']).toBe(image.top.digest)
    expect(head.headers['content-length']).toBe(String(image.top.bytes.length))
    expect(reg.stats.count('GET', '/v2/library/app/manifests/1.0')).toBe(1)
    const get = await c.get('/v2/library/app/manifests/1.0')
    expect(get.body.equals(image.top.bytes)).toBe(true)
    expect(get.headers['docker-content-digest']).toBe(image.top.digest)
    // Fresh within its TTL: neither answer asked the registry again.
    expect(reg.stats.count('GET', '/v2/library/app/manifests/1.0')).toBe(1)
    expect(reg.stats.count('HEAD', '/v2/library/app/manifests/1.0')).toBe(1)
  })

  it('relays an upstream 404 for a tag, and does not answer it stale', async () => {
    const content = new RegistryContent()
    content.add('library/app', '1.0', buildImage({ seed: 'x', layers: [100] }))
    reg = await startOciRegistry({ content })
    node = await startMirror(reg.url)
    const res = await new PullClient(node.url).get('/v2/library/app/manifests/nope')
    expect(res.status).toBe(404)
    expect((JSON.parse(res.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('MANIFEST_UNKNOWN')
    expect(res.headers['x-aimirror-stale']).toBeUndefined()
  })
})
