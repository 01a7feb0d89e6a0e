import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestNode } from '../helpers/node.ts'
import { RegistryContent } from '../fixtures/upstreams/oci-content.ts'
import { buildImage, MEDIA, sha256 } from '../fixtures/upstreams/oci-image.ts'
import type { BuiltImage } from '../fixtures/upstreams/oci-image.ts'
import { startOciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import type { OciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import { bearerParams, fetchRaw, PullClient, startMirror } from './oci-helpers.ts'

describe('registry mirror: pulls through the token flow', () => {
  let hub: OciRegistry
  let ghcr: OciRegistry
  let node: TestNode
  let multi: BuiltImage
  let dockerList: BuiltImage
  let other: BuiltImage
  let solo: BuiltImage

  beforeAll(async () => {
    const hubContent = new RegistryContent()
    multi = buildImage({ seed: 'multi', layers: [150_000, 2000], architectures: ['amd64', 'arm64'] })
    dockerList = buildImage({ seed: 'dl', layers: [3000], architectures: ['amd64', 'arm64'], format: 'docker' })
    hubContent.add('library/tiny', '1.0', multi)
    hubContent.add('library/tiny', 'docker', dockerList)
    hubContent.add('team/copy', '1.0', multi)
    solo = buildImage({ seed: 'solo', layers: [4000] })
    hubContent.add('library/solo', '1.0', solo)
    const ghcrContent = new RegistryContent()
    other = buildImage({ seed: 'ghcr', layers: [5000] })
    ghcrContent.add('owner/img', '2.0', other)
    ghcrContent.add('owner/img', '1.0', multi)
    for (const t of ['a', 'b', 'c', 'd', 'e']) ghcrContent.add('owner/img', t, other)
    hub = await startOciRegistry({ content: hubContent, cdn: { redirectHead: true } })
    ghcr = await startOciRegistry({ content: ghcrContent })
    node = await startMirror(hub.url, { oci: { registries: { 'docker.io': hub.url, 'ghcr.io': ghcr.url } } })
  })

  afterAll(async () => {
    await node?.stop()
    await hub?.close()
    await ghcr?.close()
  })

  it('answers the ping with a challenge pointing at its own token endpoint, and 200 with a token', async () => {
    const res = await fetchRaw(`${node.url}/v2/`)
    expect(res.status).toBe(401)
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0')
    const c = bearerParams(res.headers['www-authenticate'])
    expect(c.realm).toBe(`${node.url}/v2/token`)
    expect(c.service).toBe('docker.io')
    const token = await fetchRaw(`${c.realm}?service=${c.service}`)
    expect(token.status).toBe(200)
    const doc = JSON.parse(token.body.toString()) as { token: string, access_token: string, expires_in: number }
    expect(doc.expires_in).toBeGreaterThanOrEqual(60)
    expect(doc.access_token).toBe(doc.token)
    const ok = await fetchRaw(`${node.url}/v2/`, { headers: ['authorization', `Bearer ${doc.token}`] })
    expect(ok.status).toBe(200)
  })

  it('serves a tag byte-exact with its digest and exact type, resolving it upstream with HEAD only', async () => {
    const c = new PullClient(node.url)
    hub.stats.reset()
    const head = await c.get('/v2/library/tiny/manifests/1.0', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(multi.top.bytes.length))
    expect(head.headers['docker-content-digest']).toBe(multi.top.digest)
    expect(head.headers['content-type']).toBe(MEDIA.ociIndex)
    expect(head.body.length).toBe(0)
    const get = await c.get('/v2/library/tiny/manifests/1.0')
    expect(get.body.equals(multi.top.bytes)).toBe(true)
    expect(get.headers['content-type']).toBe(MEDIA.ociIndex)
    expect(hub.stats.count('GET', '/v2/library/tiny/manifests/1.0')).toBe(0)
    expect(hub.stats.count('HEAD', '/v2/library/tiny/manifests/1.0')).toBe(1)
  })

  it('forwards every Accept line and keeps one answer per Accept variant', async () => {
    const c = new PullClient(node.url)
    const amd64 = dockerList.platforms.get('linux/amd64')
    // Separate lines, the list type last: a proxy keeping only one line would lose the others.
    const lists = await c.get('/v2/library/tiny/manifests/docker', { accept: [MEDIA.dockerManifest, MEDIA.ociManifest, MEDIA.dockerList] })
    expect(lists.headers['docker-content-digest']).toBe(dockerList.top.digest)
    const single = await c.get('/v2/library/tiny/manifests/docker', { accept: [MEDIA.dockerManifest] })
    expect(single.headers['docker-content-digest']).toBe(amd64?.digest)
    expect(single.headers['content-type']).toBe(MEDIA.dockerManifest)
    expect(single.body.equals(amd64?.bytes ?? Buffer.alloc(0))).toBe(true)
    const again = await c.get('/v2/library/tiny/manifests/docker', { accept: [MEDIA.dockerManifest, MEDIA.ociManifest, MEDIA.dockerList] })
    expect(again.headers['docker-content-digest']).toBe(dockerList.top.digest)
    const refused = await c.get('/v2/library/tiny/manifests/1.0', { accept: [MEDIA.dockerManifest] })
    expect(refused.status).toBe(404)
    expect((JSON.parse(refused.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('MANIFEST_UNKNOWN')
  })

  it('serves manifests by digest from the cache after the first fetch', async () => {
    const c = new PullClient(node.url)
    const m = multi.platforms.get('linux/arm64')
    const first = await c.get(`/v2/library/tiny/manifests/${m?.digest ?? ''}`)
    expect(first.body.equals(m?.bytes ?? Buffer.alloc(0))).toBe(true)
    expect(first.headers['content-type']).toBe(MEDIA.ociManifest)
    hub.stats.reset()
    const second = await c.get(`/v2/library/tiny/manifests/${m?.digest ?? ''}`, { method: 'HEAD' })
    expect(second.headers['content-length']).toBe(String(m?.bytes.length))
    expect(hub.stats.requests.filter(r => r.path.includes('/manifests/'))).toEqual([])
  })

  it('streams blobs through the CDN redirect with Range, then answers HEAD from the cache', async () => {
    const c = new PullClient(node.url)
    const layer = multi.amd64Layers[0] as string
    const bytes = await c.get(`/v2/library/tiny/blobs/${layer}`)
    expect(bytes.status).toBe(200)
    expect(sha256(bytes.body)).toBe(layer)
    expect(bytes.headers['docker-content-digest']).toBe(layer)
    const part = await c.get(`/v2/library/tiny/blobs/${layer}`, { range: 'bytes=100-199' })
    expect(part.status).toBe(206)
    expect(part.headers['content-range']).toBe(`bytes 100-199/${bytes.body.length}`)
    expect(part.body.equals(bytes.body.subarray(100, 200))).toBe(true)
    hub.stats.reset()
    const head = await c.get(`/v2/library/tiny/blobs/${layer}`, { method: 'HEAD' })
    expect(head.headers['content-length']).toBe(String(bytes.body.length))
    expect(hub.stats.requests).toEqual([])
  })

  for (const kind of ['blobs', 'manifests'] as const) {
    it(`asks for a cold ${kind === 'blobs' ? 'blob' : 'manifest by digest'} beside its access check, not after it`, async () => {
      const c = new PullClient(node.url)
      const digest = kind === 'blobs' ? solo.amd64Layers[0] as string : solo.top.digest
      const path = `/v2/library/solo/${kind}/${digest}`
      hub.stats.reset()
      hub.configure({ latencyMs: 300 })
      try {
        const bytes = await c.get(path, { accept: [solo.top.mediaType] })
        expect(bytes.status).toBe(200)
        expect(sha256(bytes.body)).toBe(digest)
      } finally {
        hub.configure({ latencyMs: 0 })
      }
      const check = hub.stats.requests.find(r => r.method === 'HEAD' && r.path === path)
      const fetch = hub.stats.arrivals.find(r => r.method === 'GET' && r.path === path)
      // 307: this registry sends blob HEADs to its storage too, which the check takes as a yes.
      expect(check?.status).toBe(kind === 'blobs' ? 307 : 200)
      expect(fetch).toBeDefined()
      // The registry answers each request 300 ms after it came: asked after the check, the GET came later.
      expect(fetch?.at).toBeLessThan(check?.doneAt ?? 0)
    })
  }

  it('sizes an uncached blob from a Range 0-0 GET when the registry redirects HEAD to a signed URL', async () => {
    const c = new PullClient(node.url)
    const layer = multi.amd64Layers[1] as string
    const cdnHeadsBefore = hub.cdn.stats.byMethod.HEAD ?? 0
    const head = await c.get(`/v2/library/tiny/blobs/${layer}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(multi.blobs.get(layer)?.length))
    expect(hub.cdn.stats.byMethod.HEAD ?? 0).toBe(cdnHeadsBefore)
    expect(hub.cdn.stats.rangeHeaders).toContain('bytes=0-0')
  })

  it('stores a blob once whichever repository or registry it is asked through', async () => {
    const c = new PullClient(node.url)
    const layer = multi.amd64Layers[0] as string
    await c.get(`/v2/library/tiny/blobs/${layer}`)
    const cdnBefore = hub.cdn.stats.cdnRequests + ghcr.cdn.stats.cdnRequests
    const viaRepo = await c.get(`/v2/team/copy/blobs/${layer}`)
    const viaPrefix = await c.get(`/v2/ghcr.io/owner/img/blobs/${layer}`)
    const viaNs = await c.get(`/v2/owner/img/blobs/${layer}?ns=ghcr.io`)
    for (const r of [viaRepo, viaPrefix, viaNs]) expect(sha256(r.body)).toBe(layer)
    expect(hub.cdn.stats.cdnRequests + ghcr.cdn.stats.cdnRequests).toBe(cdnBefore)
  })

  it('routes by ns, by path prefix and by default (adding library/)', async () => {
    const c = new PullClient(node.url)
    const byNs = await c.get('/v2/owner/img/manifests/2.0?ns=ghcr.io')
    expect(byNs.headers['docker-content-digest']).toBe(other.top.digest)
    const byPrefix = await c.get('/v2/ghcr.io/owner/img/manifests/2.0')
    expect(byPrefix.headers['docker-content-digest']).toBe(other.top.digest)
    const official = await c.get('/v2/tiny/manifests/1.0')
    expect(official.headers['docker-content-digest']).toBe(multi.top.digest)
    const unknown = await c.get('/v2/owner/img/manifests/2.0?ns=registry.example')
    expect(unknown.status).toBe(404)
    expect((JSON.parse(unknown.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('NAME_UNKNOWN')
  })

  it('lists tags with pagination links that point back at the mirror', async () => {
    const c = new PullClient(node.url)
    const page = await c.get('/v2/ghcr.io/owner/img/tags/list?n=2')
    expect(page.status).toBe(200)
    expect((JSON.parse(page.body.toString()) as { tags: string[] }).tags).toEqual(['1.0', '2.0'])
    expect(page.headers.link).toBe('</v2/ghcr.io/owner/img/tags/list?last=2.0&n=2>; rel="next"')
    const next = await c.get('/v2/ghcr.io/owner/img/tags/list?last=2.0&n=2')
    expect((JSON.parse(next.body.toString()) as { tags: string[] }).tags).toEqual(['a', 'b'])
  })

  it('refuses pushes', async () => {
    const res = await fetchRaw(`${node.url}/v2/library/tiny/blobs/uploads/`, { method: 'POST' })
    expect(res.status).toBe(405)
    expect((JSON.parse(res.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('UNSUPPORTED')
  })

  it('survives a client that opens TLS on the plain port first (skopeo does)', async () => {
    const port = new URL(node.url).port
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false, timeout: 5000 })
      s.once('error', () => resolve())
      s.once('close', () => resolve())
      s.once('secureConnect', () => { s.destroy(); resolve() })
    })
    // Half a ClientHello, then silence: the connection must not wedge the server either.
    const raw = connect(Number(port), '127.0.0.1')
    raw.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]))
    const ping = await fetchRaw(`${node.url}/v2/`)
    expect(ping.status).toBe(401)
    raw.destroy()
  })
})
