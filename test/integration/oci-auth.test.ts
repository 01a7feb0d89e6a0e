import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { TestNode } from '../helpers/node.ts'
import { RegistryContent } from '../fixtures/upstreams/oci-content.ts'
import { buildImage, sha256 } from '../fixtures/upstreams/oci-image.ts'
import { startOciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import type { OciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import { bearerParams, fetchRaw, PullClient, startMirror } from './oci-helpers.ts'

const USERS = { alice: 'wonderland', bob: 'builder' }

describe('registry mirror: credentials, private content, token renewal', () => {
  let reg: OciRegistry | undefined
  let node: TestNode | undefined

  afterEach(async () => {
    await node?.stop()
    await reg?.close()
    node = undefined
    reg = undefined
  })

  async function setup (opts: { tokenTtlS?: number, cdnTtlMs?: number, bps?: number, layer?: number } = {}): Promise<{ secret: ReturnType<typeof buildImage>, pub: ReturnType<typeof buildImage> }> {
    const content = new RegistryContent()
    const secret = buildImage({ seed: 'secret', layers: [opts.layer ?? 20_000] })
    const pub = buildImage({ seed: 'public', layers: [4000] })
    content.add('alice/secret', '1.0', secret)
    content.add('library/pub', '1.0', pub)
    reg = await startOciRegistry({
      content,
      auth: { users: USERS, private: { 'alice/secret': ['alice'] }, tokenTtlS: opts.tokenTtlS },
      cdn: { ttlMs: opts.cdnTtlMs, perConnectionBps: opts.bps }
    })
    node = await startMirror(reg.url)
    return { secret, pub }
  }

  it('asks an anonymous client for credentials on a private repository and serves the one who has them', async () => {
    const { secret } = await setup()
    const anon = await new PullClient(node!.url).get('/v2/alice/secret/manifests/1.0')
    expect(anon.status).toBe(401)
    expect(bearerParams(anon.headers['www-authenticate']).scope).toBe('repository:alice/secret:pull')
    const alice = new PullClient(node!.url, { user: 'alice', password: USERS.alice })
    const ok = await alice.get('/v2/alice/secret/manifests/1.0')
    expect(ok.status).toBe(200)
    expect(ok.body.equals(secret.top.bytes)).toBe(true)
    const layer = await alice.get(`/v2/alice/secret/blobs/${secret.amd64Layers[0] ?? ''}`)
    expect(sha256(layer.body)).toBe(secret.amd64Layers[0])
  })

  it('with the registry away, answers a logged-in client\'s public tag from what an anonymous client resolved', async () => {
    const { pub } = await setup()
    expect((await new PullClient(node!.url).get('/v2/library/pub/manifests/1.0')).status).toBe(200)
    const alice = new PullClient(node!.url, { user: 'alice', password: USERS.alice })
    expect((await alice.get('/v2/alice/secret/manifests/1.0')).status).toBe(200)
    await reg!.close()
    reg = undefined
    const tag = await alice.get('/v2/library/pub/manifests/1.0')
    expect(tag.status).toBe(200)
    expect(tag.headers['x-aimirror-stale']).toBe('1')
    expect(tag.body.equals(pub.top.bytes)).toBe(true)
    // A private tag has no anonymous answer: nobody else gets alice's.
    const bob = new PullClient(node!.url, { user: 'bob', password: USERS.bob })
    expect((await bob.get('/v2/alice/secret/manifests/1.0')).status).not.toBe(200)
  })

  it('serves cached private content only to clients upstream accepts for it', async () => {
    const { secret } = await setup()
    const layer = secret.amd64Layers[0] as string
    const alice = new PullClient(node!.url, { user: 'alice', password: USERS.alice })
    expect((await alice.get(`/v2/alice/secret/blobs/${layer}`)).status).toBe(200)
    const cdnAfterAlice = reg!.cdn.stats.cdnRequests

    // Anonymous, by the private name or by its digest under a public name: no bytes.
    const anon = new PullClient(node!.url)
    const direct = await anon.get(`/v2/alice/secret/blobs/${layer}`)
    expect(direct.status).toBe(401)
    const smuggled = await anon.get(`/v2/library/pub/blobs/${layer}`)
    expect(smuggled.status).toBe(404)
    expect(smuggled.body.includes(Buffer.from('data-amd64'))).toBe(false)

    // Another user with valid credentials but no access to the repository.
    const bob = new PullClient(node!.url, { user: 'bob', password: USERS.bob })
    const denied = await bob.get(`/v2/alice/secret/blobs/${layer}`)
    expect(denied.status).toBe(403)
    const error = (JSON.parse(denied.body.toString()) as { errors: Array<{ code: string, message: string }> }).errors[0]
    expect(error?.code).toBe('DENIED')
    expect(error?.message).toMatch(/refused these credentials.*401/)

    // Alice again: from the cache (the access check is remembered, the CDN is not asked).
    reg!.stats.reset()
    const again = await alice.get(`/v2/alice/secret/blobs/${layer}`)
    expect(sha256(again.body)).toBe(layer)
    expect(reg!.cdn.stats.cdnRequests).toBe(cdnAfterAlice)
    expect(reg!.stats.requests.filter(r => r.path.includes('/blobs/'))).toEqual([])
  })

  it('a logged-in client\'s public layer is fetched as public (members may share it); a private one is not', async () => {
    const { secret, pub } = await setup()
    const alice = new PullClient(node!.url, { user: 'alice', password: USERS.alice })
    const publicLayer = pub.amd64Layers[0] as string
    const privateLayer = secret.amd64Layers[0] as string
    expect(sha256((await alice.get(`/v2/library/pub/blobs/${publicLayer}`)).body)).toBe(publicLayer)
    expect(sha256((await alice.get(`/v2/alice/secret/blobs/${privateLayer}`)).body)).toBe(privateLayer)
    // The registry state's mark of what any client may have (see OciState).
    const marked = (digest: string): boolean => existsSync(join(node!.cacheDir, 'oci', 'public', digest.slice(7, 9), digest.replace(':', '-')))
    expect(marked(publicLayer)).toBe(true)
    expect(marked(privateLayer)).toBe(false)
  })

  it('rejects wrong credentials at its token endpoint, and accepts the OAuth password grant', async () => {
    await setup()
    const c = bearerParams((await fetchRaw(`${node!.url}/v2/`)).headers['www-authenticate'])
    const bad = await fetchRaw(`${c.realm ?? ''}?service=${c.service ?? ''}&scope=repository:alice/secret:pull`, {
      headers: ['authorization', 'Basic ' + Buffer.from('alice:wrong').toString('base64')]
    })
    expect(bad.status).toBe(401)
    // `docker login`: credentials and no scope, checked against the upstream realm.
    const login = async (password: string): Promise<number> => (await fetchRaw(`${c.realm ?? ''}?service=${c.service ?? ''}&account=alice`, {
      headers: ['authorization', 'Basic ' + Buffer.from(`alice:${password}`).toString('base64')]
    })).status
    expect(await login('wrong')).toBe(401)
    expect(await login(USERS.alice)).toBe(200)
    const form = new URLSearchParams({ grant_type: 'password', username: 'alice', password: USERS.alice, service: c.service ?? '', scope: 'repository:alice/secret:pull', client_id: 'ctr' })
    const posted = await fetchRaw(c.realm ?? '', { method: 'POST', headers: ['content-type', 'application/x-www-form-urlencoded'], body: form.toString() })
    expect(posted.status).toBe(200)
    const token = (JSON.parse(posted.body.toString()) as { access_token: string, expires_in: number })
    expect(token.expires_in).toBeGreaterThanOrEqual(60)
    const m = await fetchRaw(`${node!.url}/v2/alice/secret/manifests/1.0`, { headers: ['authorization', `Bearer ${token.access_token}`, 'accept', 'application/vnd.oci.image.manifest.v1+json'] })
    expect(m.status).toBe(200)
    const refresh = await fetchRaw(c.realm ?? '', { method: 'POST', headers: ['content-type', 'application/x-www-form-urlencoded'], body: 'grant_type=refresh_token&refresh_token=x' })
    expect(refresh.status).toBe(404)
  })

  it('renews its own upstream tokens during a long download and re-resolves expired CDN URLs', async () => {
    // Tokens live 1 s, signed URLs 300 ms; the layer takes about 3 s at 50 KB/s per connection.
    const { secret } = await setup({ tokenTtlS: 1, cdnTtlMs: 300, bps: 50_000, layer: 600_000 })
    const layer = secret.amd64Layers[0] as string
    const alice = new PullClient(node!.url, { user: 'alice', password: USERS.alice })
    const res = await alice.get(`/v2/alice/secret/blobs/${layer}`)
    expect(res.status).toBe(200)
    expect(sha256(res.body)).toBe(layer)
    const upstreamTokens = reg!.stats.tokens.filter(t => t.user === 'alice' && t.repos.includes('alice/secret'))
    expect(upstreamTokens.length).toBeGreaterThan(1)
    expect(reg!.cdn.stats.expired + reg!.stats.count('GET', `/v2/alice/secret/blobs/${layer}`)).toBeGreaterThan(1)
  }, 30_000)
})
