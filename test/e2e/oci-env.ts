/**
 * The end-to-end registry setup shared by the skopeo, containerd and dockerd tests: a real
 * `docker-registry` holding the images (pushed with skopeo from OCI layouts built in TypeScript), the
 * token-auth front that makes it behave like Docker Hub (scoped expiring tokens, blob GETs redirected
 * to signed URLs on 127.0.0.2), and the mirror node in front of it all, for docker.io and ghcr.io.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startDistribution } from '../fixtures/upstreams/oci-distribution.ts'
import type { Distribution } from '../fixtures/upstreams/oci-distribution.ts'
import { buildImage, writeOciLayout } from '../fixtures/upstreams/oci-image.ts'
import type { BuiltImage } from '../fixtures/upstreams/oci-image.ts'
import { startOciRegistry } from '../fixtures/upstreams/oci-registry.ts'
import type { OciRegistry } from '../fixtures/upstreams/oci-registry.ts'

export const USERS = { alice: 'wonderland' }

export interface OciEnv {
  readonly work: string
  readonly node: TestNode
  /** host:port of the mirror. */
  readonly mirrorHost: string
  readonly front: OciRegistry
  /** library/tiny:1.0 (amd64 + arm64 index, two layers). */
  readonly tiny: BuiltImage
  /** owner/img:1.0, reached as ghcr.io/owner/img. */
  readonly ghcr: BuiltImage
  /** alice/secret:1.0, private to alice. */
  readonly secret: BuiltImage
  /** Stops the registry and its front: what follows is served from the mirror's cache or not at all. */
  stopUpstream: () => Promise<void>
  close: () => Promise<void>
}

export async function startOciEnv (opts: { tokenTtlS?: number } = {}): Promise<OciEnv> {
  const work = await mkdtemp(join(tmpdir(), 'aimirror-oci-e2e-'))
  const layout = join(work, 'layout')
  const tiny = buildImage({ seed: 'e2e-tiny', layers: [256 * 1024, 16 * 1024], architectures: ['amd64', 'arm64'] })
  const ghcr = buildImage({ seed: 'e2e-ghcr', layers: [64 * 1024], architectures: ['amd64', 'arm64'] })
  const secret = buildImage({ seed: 'e2e-secret', layers: [32 * 1024] })
  await writeOciLayout(layout, 'tiny', tiny)
  await writeOciLayout(layout, 'ghcr', ghcr)
  await writeOciLayout(layout, 'secret', secret)
  let dist: Distribution | null = await startDistribution()
  let front: OciRegistry | null = null
  let node: TestNode | null = null
  try {
    await dist.push(layout, 'tiny', 'library/tiny:1.0')
    await dist.push(layout, 'ghcr', 'owner/img:1.0')
    await dist.push(layout, 'secret', 'alice/secret:1.0')
    front = await startOciRegistry({
      backend: { url: dist.url, blobDir: join(layout, 'blobs', 'sha256') },
      auth: { users: USERS, private: { 'alice/secret': ['alice'] }, tokenTtlS: opts.tokenTtlS ?? 300 }
    })
    const upstream = front.url
    node = await startTestNode({
      rules: [
        { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', chunk_size: 65536, concurrency: 4 },
        { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy', metadata_ttl_s: 0 }
      ],
      oci: { registries: { 'docker.io': upstream, 'ghcr.io': upstream } }
    })
  } catch (err) {
    await node?.stop()
    await front?.close()
    await dist.stop()
    await rm(work, { recursive: true, force: true })
    throw err
  }
  const started = { node, front }
  let upstreamUp = true
  const stopUpstream = async (): Promise<void> => {
    if (!upstreamUp) return
    upstreamUp = false
    await started.front.close()
    await dist?.stop()
    dist = null
  }
  return {
    work,
    node: started.node,
    mirrorHost: new URL(started.node.url).host,
    front: started.front,
    tiny,
    ghcr,
    secret,
    stopUpstream,
    async close () {
      await started.node.stop()
      await stopUpstream()
      await rm(work, { recursive: true, force: true })
    }
  }
}
