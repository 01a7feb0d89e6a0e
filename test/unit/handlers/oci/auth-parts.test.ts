import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { authMarker, AUTH_MARKER, ociAuthInterceptor } from '../../../../node/handlers/oci/auth-interceptor.ts'
import { authenticate } from '../../../../node/handlers/oci/client-auth.ts'
import { ClientTokens, repoKey } from '../../../../node/handlers/oci/client-tokens.ts'
import { basicAuthorization, CredentialVault } from '../../../../node/handlers/oci/credentials.ts'
import { OciState } from '../../../../node/handlers/oci/state.ts'
import { schemeFrom, UpstreamTokens } from '../../../../node/handlers/oci/upstream-tokens.ts'
import { createLogger } from '../../../../node/log.ts'
import { RegistryContent } from '../../../fixtures/upstreams/oci-content.ts'
import { buildImage } from '../../../fixtures/upstreams/oci-image.ts'
import { startOciRegistry } from '../../../fixtures/upstreams/oci-registry.ts'
import type { OciRegistry } from '../../../fixtures/upstreams/oci-registry.ts'

const logger = createLogger({ level: 'silent', file: null })

describe('client tokens and credentials', () => {
  it('issues tokens of at least 60 s that cover only the repositories asked for', () => {
    let now = 1_000_000
    const tokens = new ClientTokens({ ttlMs: 10_000, now: () => now })
    const issued = tokens.issue([repoKey('https://r', 'a/b')], null)
    expect(issued.expiresInS).toBe(60)
    const target = { registry: 'r', upstream: 'https://r', repo: 'a/b', name: 'a/b', ns: null }
    expect(authenticate(`Bearer ${issued.token}`, tokens, target)).toEqual({ kind: 'ok', who: { cred: null } })
    expect(authenticate(`Bearer ${issued.token}`, tokens, { ...target, repo: 'c/d' })).toEqual({ kind: 'challenge', error: 'insufficient_scope' })
    expect(authenticate('Bearer nope', tokens, target)).toEqual({ kind: 'challenge', error: 'invalid_token' })
    expect(authenticate(undefined, tokens, target)).toEqual({ kind: 'challenge' })
    now += 60_001
    expect(authenticate(`Bearer ${issued.token}`, tokens, target).kind).toBe('challenge')
  })

  it('keys credentials by an HMAC that reveals nothing and forgets idle ones', () => {
    let now = 0
    const vault = new CredentialVault({ idleMs: 1000, now: () => now })
    const auth = basicAuthorization('alice', 'secret')
    const cred = vault.remember(auth)
    expect(cred.key).toMatch(/^[0-9a-f]{32}$/)
    expect(cred.key).not.toContain(Buffer.from('alice:secret').toString('base64').slice(0, 8))
    expect(new CredentialVault().keyOf(auth)).not.toBe(cred.key)
    expect(vault.get(cred.key)?.authorization).toBe(auth)
    now = 2000
    expect(vault.get(cred.key)).toBeUndefined()
  })

  it('prefers a Bearer challenge with an http(s) realm, then Basic', () => {
    expect(schemeFrom(['Basic realm="x", Bearer realm="https://a/token",service="s"'])).toEqual({ kind: 'bearer', realm: 'https://a/token', service: 's' })
    expect(schemeFrom(['Bearer realm="file:///etc/passwd"', 'Basic realm="x"'])).toEqual({ kind: 'basic' })
    expect(schemeFrom([])).toBeNull()
  })
})

describe('registry state on disk', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'oci-state-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('remembers public digests and tag records across instances, and only persists what it is told to', async () => {
    const d = 'sha256:' + 'b'.repeat(64)
    const a = new OciState({ logger }, { dir })
    expect(await a.isPublic(d)).toBe(false)
    await a.markPublic(d)
    await a.markPublic('../../etc/passwd')
    const rec = { digest: d, contentType: 'x/y', size: 10, checkedAt: 5 }
    await a.putTag('k1', rec, true)
    await a.putTag('k2', rec, false)
    const b = new OciState({ logger }, { dir })
    expect(await b.isPublic(d)).toBe(true)
    expect(await b.getTag('k1')).toEqual(rec)
    expect(await b.getTag('k2')).toBeUndefined()
    expect((await readdir(dir)).sort()).toEqual(['public', 'tags'])
  })
})

describe('upstream tokens and the download interceptor', () => {
  let reg: OciRegistry
  let agent: Agent
  const image = buildImage({ seed: 'unit', layers: [5000] })
  const layer = image.amd64Layers[0] as string

  beforeAll(async () => {
    const content = new RegistryContent()
    content.add('team/app', '1.0', image)
    reg = await startOciRegistry({ content, auth: { users: { u: 'p' }, private: { 'team/app': ['u'] } }, cdn: { enabled: false } })
    agent = new Agent()
  })
  afterAll(async () => {
    await agent.close()
    await reg.close()
  })

  it('fetches one token per scope and credential, reuses it, and refuses bad credentials', async () => {
    const tokens = new UpstreamTokens({ dispatcher: agent, logger })
    const vault = new CredentialVault()
    const cred = vault.remember(basicAuthorization('u', 'p'))
    const scope = { upstream: reg.url, repo: 'team/app' }
    reg.stats.reset()
    const [a, b] = await Promise.all([tokens.authorization(scope, cred), tokens.authorization(scope, cred)])
    expect(a).toMatch(/^Bearer /)
    expect(b).toBe(a)
    expect(await tokens.authorization(scope, cred)).toBe(a)
    expect(reg.stats.tokens.length).toBe(1)
    expect(await tokens.authorization(scope, null)).not.toBe(a)
    const bad = vault.remember(basicAuthorization('u', 'wrong'))
    await expect(tokens.authorization(scope, bad)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_DENIED' })
    await expect(tokens.checkLogin(reg.url, bad)).rejects.toMatchObject({ code: 'ERR_UPSTREAM_DENIED' })
    await expect(tokens.checkLogin(reg.url, cred)).resolves.toBeUndefined()
  })

  it('swaps the marker for a token on the registry only, and renews a token upstream revoked', async () => {
    const tokens = new UpstreamTokens({ dispatcher: agent, logger })
    const vault = new CredentialVault()
    const cred = vault.remember(basicAuthorization('u', 'p'))
    const dispatcher = agent.compose(ociAuthInterceptor({ tokens, vault }))
    const scope = { upstream: reg.url, repo: 'team/app' }
    const get = async (): Promise<number> => {
      const res = await dispatcher.request({ origin: reg.url, path: `/v2/team/app/blobs/${layer}`, method: 'GET', headers: { [AUTH_MARKER]: authMarker(scope, cred), range: 'bytes=0-9' } })
      await res.body.dump()
      return res.statusCode
    }
    expect(await get()).toBe(206)
    reg.revokeTokens()
    reg.stats.reset()
    expect(await get()).toBe(206)
    expect(reg.stats.requests.map(r => r.status)).toEqual([401, 200, 206])
    // Without a usable credential the registry's answer comes through.
    const anon = await dispatcher.request({ origin: reg.url, path: `/v2/team/app/blobs/${layer}`, method: 'GET', headers: { [AUTH_MARKER]: authMarker(scope, null) } })
    await anon.body.dump()
    expect(anon.statusCode).toBe(401)
  })

  it('never sends the token to another origin, and strips the marker there', async () => {
    const tokens = new UpstreamTokens({ dispatcher: agent, logger })
    const vault = new CredentialVault()
    const dispatcher = agent.compose(ociAuthInterceptor({ tokens, vault }))
    const seen: Array<Record<string, unknown>> = []
    const { createServer } = await import('node:http')
    const other = createServer((req, res) => { seen.push(req.headers); res.end('ok') })
    await new Promise<void>(resolve => other.listen(0, '127.0.0.1', () => resolve()))
    const port = (other.address() as { port: number }).port
    try {
      const res = await dispatcher.request({ origin: `http://127.0.0.1:${port}`, path: '/x', method: 'GET', headers: { [AUTH_MARKER]: authMarker({ upstream: reg.url, repo: 'team/app' }, null) } })
      await res.body.dump()
      expect(seen[0]?.authorization).toBeUndefined()
      expect(seen[0]?.[AUTH_MARKER]).toBeUndefined()
    } finally {
      await new Promise<void>(resolve => other.close(() => resolve()))
    }
  })
})
