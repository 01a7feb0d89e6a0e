import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run } from '../fixtures/upstreams/oci-distribution.ts'
import { sha256 } from '../fixtures/upstreams/oci-image.ts'
import type { BuiltImage } from '../fixtures/upstreams/oci-image.ts'
import { startOciEnv, USERS } from './oci-env.ts'
import type { OciEnv } from './oci-env.ts'

/** skopeo 1.9 (containers/image) through the mirror: plain HTTP after a TLS attempt, path-prefixed names. */
describe('skopeo copy through the mirror', () => {
  let env: OciEnv

  beforeAll(async () => { env = await startOciEnv() }, 60_000)
  afterAll(async () => { await env?.close() })

  async function skopeo (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
    const home = join(env.work, 'home')
    return await run('skopeo', args, {
      timeoutMs: 60_000,
      env: { ...process.env, HOME: home, REGISTRY_AUTH_FILE: join(home, 'auth.json'), XDG_RUNTIME_DIR: home }
    })
  }

  async function copy (name: string, out: string, extra: string[] = []): Promise<{ code: number | null, stderr: string }> {
    return await skopeo(['copy', '--insecure-policy', '--all', '--src-tls-verify=false', ...extra, `docker://${env.mirrorHost}/${name}`, `dir:${join(env.work, out)}`])
  }

  async function listTags (name: string, extra: string[] = []): Promise<string[] | null> {
    const r = await skopeo(['list-tags', '--tls-verify=false', ...extra, `docker://${env.mirrorHost}/${name}`])
    return r.code === 0 ? (JSON.parse(r.stdout) as { Tags: string[] }).Tags : null
  }

  /** The dir: copy holds the image's top manifest byte-exact and every blob with the right digest. */
  async function expectCopied (out: string, image: BuiltImage): Promise<void> {
    const dir = join(env.work, out)
    expect((await readFile(join(dir, 'manifest.json'))).equals(image.top.bytes)).toBe(true)
    const files = new Set(await readdir(dir))
    for (const [digest, bytes] of image.blobs) {
      const name = digest.slice(7)
      expect(files.has(name), name).toBe(true)
      expect(sha256(await readFile(join(dir, name)))).toBe(digest)
      expect((await readFile(join(dir, name))).length).toBe(bytes.length)
    }
  }

  it('pulls a multi-arch, multi-layer image from the default registry (Docker Hub role)', async () => {
    const r = await copy('library/tiny:1.0', 'tiny-1')
    expect(r.code, r.stderr).toBe(0)
    await expectCopied('tiny-1', env.tiny)
  })

  it('pulls another registry by path prefix', async () => {
    const r = await copy('ghcr.io/owner/img:1.0', 'ghcr-1')
    expect(r.code, r.stderr).toBe(0)
    await expectCopied('ghcr-1', env.ghcr)
  })

  it('pulls a private image only with credentials', async () => {
    const denied = await copy('alice/secret:1.0', 'secret-anon')
    expect(denied.code).not.toBe(0)
    const r = await copy('alice/secret:1.0', 'secret-1', ['--src-creds', `alice:${USERS.alice}`])
    expect(r.code, r.stderr).toBe(0)
    await expectCopied('secret-1', env.secret)
  })

  it('lists tags, of a private repository only with credentials', async () => {
    expect(await listTags('library/tiny')).toEqual(['1.0'])
    expect(await listTags('alice/secret')).toBeNull()
    expect(await listTags('alice/secret', ['--creds', `alice:${USERS.alice}`])).toEqual(['1.0'])
  })

  it('pulls again from the cache with the upstream stopped', async () => {
    await env.stopUpstream()
    const r = await copy('library/tiny:1.0', 'tiny-2')
    expect(r.code, r.stderr).toBe(0)
    await expectCopied('tiny-2', env.tiny)
    const g = await copy('ghcr.io/owner/img:1.0', 'ghcr-2')
    expect(g.code, g.stderr).toBe(0)
    expect(await listTags('library/tiny')).toEqual(['1.0'])
    expect(await listTags('alice/secret', ['--creds', `alice:${USERS.alice}`])).toEqual(['1.0'])
    expect(await listTags('alice/secret')).toBeNull()
  })
})
