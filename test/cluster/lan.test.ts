import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterStatsView } from '../../node/cluster/view.ts'
import { formatClusterKey } from '../../protocol/membership.ts'
import { blobData, sha256Hex } from './lan/blob-data.ts'
import { PrivateLan } from './lan/namespaces.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const here = fileURLToPath(new URL('./lan/', import.meta.url))
const SIZE = 3 * (1 << 20) + 4321
const SEED = 7213
const digest = sha256Hex(blobData(SIZE, SEED))
const blobPath = `/v2/library/demo/blobs/sha256:${digest}`
const skip = PrivateLan.unavailable()

/**
 * Three node processes (the real CLI) on a private bridge of network namespaces, with a registry in a
 * fourth. mDNS is on inside the namespaces only (this is the one place multicast is sent); the nodes must
 * find each other by it, and a blob one node fetched must reach another from its peer, not from upstream.
 */
describe.skipIf(skip !== null)(`LAN cluster in network namespaces${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const lan = new PrivateLan()
  let dir: string
  const nodes: Array<{ ns: string, ip: string }> = []

  async function json<T> (ns: string, url: string): Promise<T> {
    return JSON.parse(await lan.exec(ns, [process.execPath, join(here, 'client-main.ts'), 'json', url])) as T
  }

  async function get (ns: string, url: string): Promise<{ status: number, bytes: number, sha256: string }> {
    return JSON.parse(await lan.exec(ns, [process.execPath, join(here, 'client-main.ts'), 'get', url])) as { status: number, bytes: number, sha256: string }
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aimirror-lan-'))
    try {
      await lan.up(4)
      const registry = lan.hosts[0] as { ns: string, ip: string }
      nodes.push(...lan.hosts.slice(1))
      const reg = lan.spawn(registry.ns, [process.execPath, join(here, 'registry-main.ts'), registry.ip, '9000', String(SIZE), String(SEED)], process.env)
      await waitForLine(reg, 'registry ready')
      const keyFile = join(dir, 'cluster.key')
      await writeFile(keyFile, formatClusterKey(), { mode: 0o600 })
      await Promise.all(nodes.map(async (n, i) => {
        const config = join(dir, `node${i + 1}.yaml`)
        await writeFile(config, nodeConfig(join(dir, `cache${i + 1}`), `http://${registry.ip}:9000`, keyFile))
        const child = lan.spawn(n.ns, [process.execPath, join(root, 'cli/main.ts'), 'start', '-c', config], {
          ...process.env, AIMIRROR_MDNS: '1', AIMIRROR_CLUSTER: '1', AIMIRROR_NO_TUNE: '1'
        })
        await waitForLine(child, 'aimirror listening')
      }))
    } catch (err) {
      await lan.down()
      throw err
    }
  }, 180_000)

  afterAll(async () => {
    await lan.down()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  }, 30_000)

  it('mDNS finds every node and they join the keyed cluster', async () => {
    const first = nodes[0] as { ns: string }
    const deadline = Date.now() + 40_000
    let view: ClusterStatsView | null = null
    while (Date.now() < deadline) {
      view = await json<ClusterStatsView>(first.ns, 'http://127.0.0.1:8081/cluster/stats')
      if (view.totals.reachable === 3) break
      await new Promise(resolve => setTimeout(resolve, 500))
    }
    expect(view?.mode).toBe('keyed')
    expect(view?.totals.reachable).toBe(3)
  }, 45_000)

  it('a blob fetched by one node is served to another from its peer', async () => {
    const [n1, n2] = nodes as unknown as [{ ns: string }, { ns: string }]
    const a = await get(n1.ns, `http://127.0.0.1:8081${blobPath}`)
    expect(a).toEqual({ status: 200, bytes: SIZE, sha256: digest })
    const registry = lan.hosts[0] as { ns: string, ip: string }
    const afterFirst = (await json<{ sent: number }>(registry.ns, `http://${registry.ip}:9000/_stats`)).sent
    // The last byte is released once verified; the commit follows a moment later.
    for (let i = 0; i < 100; i++) {
      if ((await json<{ cache: { file_count: number } }>(n1.ns, 'http://127.0.0.1:8081/stats')).cache.file_count === 1) break
      await new Promise(resolve => setTimeout(resolve, 200))
    }

    const b = await get(n2.ns, `http://127.0.0.1:8081${blobPath}`)
    expect(b).toEqual({ status: 200, bytes: SIZE, sha256: digest })
    const afterSecond = (await json<{ sent: number }>(registry.ns, `http://${registry.ip}:9000/_stats`)).sent
    expect(afterSecond - afterFirst).toBe(0)
    const view = await json<ClusterStatsView>(n2.ns, 'http://127.0.0.1:8081/cluster/stats')
    const self = view.nodes.find(n => n.self)
    expect(self?.bytes_from_peers).toBe(SIZE)
    expect(view.totals.bytes_to_peers).toBeGreaterThanOrEqual(SIZE)
  }, 60_000)
})

function nodeConfig (cacheDir: string, upstream: string, keyFile: string): string {
  return `server: { host: "0.0.0.0", port: 8081, read_timeout_s: 10 }
cache: { dir: "${cacheDir}" }
logging: { level: warn }
rules:
  - name: oci-blobs
    pattern: "^/v2/.+/blobs/sha256:[a-f0-9]{64}$"
    upstream: "${upstream}"
    handler: oci
    strategy: parallel
    cache_key_source: original
    min_size: 0
    concurrency: 4
  - name: oci-registry
    path_prefix: "/v2/"
    upstream: "${upstream}"
    handler: oci
    strategy: proxy
cluster:
  enabled: true
  name: lan-test
  listen: ["/ip4/0.0.0.0/tcp/4001"]
  data_host: "0.0.0.0"
  data_port: 4002
  key_file: "${keyFile}"
  lookup_ms: 2000
`
}

async function waitForLine (child: ChildProcess, text: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const t = setTimeout(() => reject(new Error(`timed out waiting for "${text}": ${out.slice(-2000)}`)), 120_000)
    const onData = (b: Buffer): void => {
      out += b.toString()
      if (out.includes(text)) { clearTimeout(t); resolve() }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (b: Buffer) => { out += b.toString() })
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`exited with ${String(code)} before "${text}": ${out.slice(-2000)}`)) })
  })
}
