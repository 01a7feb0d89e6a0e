import { afterEach, describe, expect, it } from 'vitest'
import { createNode } from '../../../../node/index.ts'
import type { TestNode } from '../../../helpers/node.ts'
import { RegistryContent } from '../../../fixtures/upstreams/oci-content.ts'
import { buildImage, MEDIA } from '../../../fixtures/upstreams/oci-image.ts'
import { startOciRegistry } from '../../../fixtures/upstreams/oci-registry.ts'
import type { OciRegistry } from '../../../fixtures/upstreams/oci-registry.ts'
import { listingKey, listingPath } from '../../../../node/handlers/oci/listings.ts'
import { PullClient, startMirror } from '../../../integration/oci-helpers.ts'
import type { Answer } from '../../../integration/oci-helpers.ts'

const USERS = { alice: 'wonderland', bob: 'builder' }
const SIG = { mediaType: MEDIA.ociManifest, digest: 'sha256:' + 'c'.repeat(64), size: 123, artifactType: 'application/vnd.example.sig' }

function tagsOf (a: Answer): string[] {
  return (JSON.parse(a.body.toString()) as { tags: string[] }).tags
}

function errorCode (a: Answer): string | undefined {
  return (JSON.parse(a.body.toString()) as { errors?: Array<{ code: string }> }).errors?.[0]?.code
}

describe('listing cache keys', () => {
  const scope = { upstream: 'https://registry-1.docker.io', repo: 'library/app' }
  const cred = (key: string): { key: string, authorization: string } => ({ key, authorization: 'Basic x' })

  it('keeps the query in a stable order, without ns', () => {
    expect(listingPath('library/app', 'tags/list', '/v2/app/tags/list?n=2&last=b&ns=docker.io')).toBe('/v2/library/app/tags/list?last=b&n=2')
    expect(listingPath('library/app', 'tags/list', '/v2/app/tags/list?last=b&n=2')).toBe('/v2/library/app/tags/list?last=b&n=2')
    expect(listingPath('o/x', 'referrers/sha256:' + 'a'.repeat(64), '/v2/o/x/referrers/sha256:' + 'a'.repeat(64))).toBe('/v2/o/x/referrers/sha256:' + 'a'.repeat(64))
  })

  it('names the credential, so listings fetched with one are never served to another', () => {
    const path = '/v2/library/app/tags/list'
    const anon = listingKey({ scope, who: { cred: null }, accept: [] }, path)
    const a = listingKey({ scope, who: { cred: cred('a') }, accept: [] }, path)
    const b = listingKey({ scope, who: { cred: cred('b') }, accept: [] }, path)
    expect(new Set([anon, a, b]).size).toBe(3)
    expect(listingKey({ scope: { ...scope, upstream: 'https://ghcr.io' }, who: { cred: null }, accept: [] }, path)).not.toBe(anon)
    expect(listingKey({ scope, who: { cred: null }, accept: ['accept', MEDIA.ociIndex] }, path)).not.toBe(anon)
  })
})

describe('registry mirror: tag lists and referrers through the metadata cache', () => {
  let reg: OciRegistry | undefined
  let node: TestNode | undefined

  afterEach(async () => {
    await node?.stop()
    await reg?.close()
    node = undefined
    reg = undefined
  })

  async function setup (ttlS: number): Promise<{ subject: string, secretSubject: string }> {
    const content = new RegistryContent()
    const app = buildImage({ seed: 'app', layers: [500] })
    const secret = buildImage({ seed: 'secret', layers: [500] })
    for (const tag of ['1.0', '2.0', 'a', 'b']) content.add('owner/app', tag, app)
    content.add('alice/secret', 'hidden-1', secret)
    content.refer('owner/app', app.top.digest, SIG)
    content.refer('alice/secret', secret.top.digest, SIG)
    reg = await startOciRegistry({ content, auth: { users: USERS, private: { 'alice/secret': ['alice'] } } })
    node = await startMirror(reg.url, { ttlS })
    return { subject: app.top.digest, secretSubject: secret.top.digest }
  }

  it('answers fresh listings without upstream, and with the upstream stopped serves them stale (also after a restart)', async () => {
    const { subject } = await setup(60)
    const c = new PullClient(node!.url)
    const page = await c.get('/v2/owner/app/tags/list?n=2')
    expect(page.status).toBe(200)
    expect(tagsOf(page)).toEqual(['1.0', '2.0'])
    expect(page.headers.link).toBe('</v2/owner/app/tags/list?last=2.0&n=2>; rel="next"')
    expect(page.headers['docker-distribution-api-version']).toBe('registry/2.0')
    const refs = await c.get(`/v2/owner/app/referrers/${subject}`)
    expect(refs.status).toBe(200)
    expect(refs.headers['content-type']).toBe(MEDIA.ociIndex)
    expect((JSON.parse(refs.body.toString()) as { manifests: unknown[] }).manifests).toEqual([SIG])
    const missing = await c.get('/v2/owner/nothing/tags/list')
    expect(missing.status).toBe(404)
    expect(errorCode(missing)).toBe('NAME_UNKNOWN')

    reg!.stats.reset()
    const again = await c.get('/v2/owner/app/tags/list?n=2')
    expect(again.body.equals(page.body)).toBe(true)
    const head = await c.get('/v2/owner/app/tags/list?n=2', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(page.body.length))
    expect(reg!.stats.requests.filter(r => r.path !== '/token')).toEqual([])

    await reg!.close()
    reg = undefined
    const restarted = createNode(node!.config)
    await node!.node.stop()
    await restarted.start()
    try {
      const offline = new PullClient(restarted.address().url)
      const stale = await offline.get('/v2/owner/app/tags/list?n=2')
      expect(stale.status).toBe(200)
      expect(stale.body.equals(page.body)).toBe(true)
      expect(stale.headers.link).toBe('</v2/owner/app/tags/list?last=2.0&n=2>; rel="next"')
      const staleRefs = await offline.get(`/v2/owner/app/referrers/${subject}`)
      expect(staleRefs.status).toBe(200)
      expect(staleRefs.body.equals(refs.body)).toBe(true)
      // A 404 upstream gave is replayed; one it never gave is not made up.
      expect((await offline.get('/v2/owner/nothing/tags/list')).status).toBe(404)
      expect((await offline.get('/v2/owner/app/tags/list?n=3')).status).toBe(502)
    } finally {
      await restarted.stop()
    }
  })

  it('revalidates an expired listing and serves it stale with a warning while upstream is down', async () => {
    await setup(0)
    const c = new PullClient(node!.url)
    const first = await c.get('/v2/owner/app/tags/list')
    expect(tagsOf(first)).toEqual(['1.0', '2.0', 'a', 'b'])
    expect(first.headers['x-aimirror-stale']).toBeUndefined()
    reg!.stats.reset()
    expect((await c.get('/v2/owner/app/tags/list')).status).toBe(200)
    expect(reg!.stats.count('GET', '/v2/owner/app/tags/list')).toBe(1)
    await reg!.close()
    reg = undefined
    const stale = await c.get('/v2/owner/app/tags/list')
    expect(stale.status).toBe(200)
    expect(stale.body.equals(first.body)).toBe(true)
    expect(stale.headers['x-aimirror-stale']).toBe('1')
    expect(stale.headers.warning).toContain('110')
  })

  it('keeps private listings to the credential that fetched them, with the upstream up and down', async () => {
    const { secretSubject } = await setup(60)
    const alice = new PullClient(node!.url, { user: 'alice', password: USERS.alice })
    const bob = new PullClient(node!.url, { user: 'bob', password: USERS.bob })
    const anon = new PullClient(node!.url)
    const own = await alice.get('/v2/alice/secret/tags/list')
    expect(own.status).toBe(200)
    expect(tagsOf(own)).toEqual(['hidden-1'])
    expect((await alice.get(`/v2/alice/secret/referrers/${secretSubject}`)).status).toBe(200)
    const anonAnswer = await anon.get('/v2/alice/secret/tags/list')
    expect(anonAnswer.status).toBe(401)
    expect(anonAnswer.body.includes('hidden-1')).toBe(false)
    expect((await anon.get(`/v2/alice/secret/referrers/${secretSubject}`)).status).toBe(401)
    const bobAnswer = await bob.get('/v2/alice/secret/tags/list')
    expect(bobAnswer.status).toBe(403)
    expect(bobAnswer.body.includes('hidden-1')).toBe(false)

    await reg!.close()
    reg = undefined
    const cached = await alice.get('/v2/alice/secret/tags/list')
    expect(cached.status).toBe(200)
    expect(tagsOf(cached)).toEqual(['hidden-1'])
    for (const other of [bob, anon]) {
      const res = await other.get('/v2/alice/secret/tags/list')
      expect(res.status).not.toBe(200)
      expect(res.body.includes('hidden-1')).toBe(false)
    }
  })
})
