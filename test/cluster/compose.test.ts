import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../config/load.ts'
import { staticPeerAddress } from '../../node/cluster/static-peers.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))

interface Service {
  image?: string
  build?: string
  entrypoint?: string[]
  environment?: Record<string, string>
  ports?: string[]
  volumes?: string[]
  depends_on?: Record<string, { condition: string }>
}

/** No docker engine runs here: the file is parsed and each node's environment checked against the real config loader. */
describe('docker-compose.yml', () => {
  const doc = parse(readFileSync(`${root}docker-compose.yml`, 'utf8'), { merge: true }) as { services: Record<string, Service>, volumes: Record<string, unknown> }
  const nodes = Object.entries(doc.services).filter(([name]) => name.startsWith('node'))

  it('has three nodes on host ports 8081-8083', () => {
    expect(nodes.map(([name]) => name)).toEqual(['node1', 'node2', 'node3'])
    expect(nodes.map(([, s]) => s.ports)).toEqual([['8081:8081'], ['8082:8081'], ['8083:8081']])
  })

  it('each node environment is a valid configuration with the cluster on and the shared key', () => {
    for (const [name, s] of nodes) {
      const env = { HOME: '/root', ...s.environment }
      const config = loadConfig({ env })
      expect(config.cluster.enabled, name).toBe(true)
      expect(config.cluster.key_file, name).toBe('/run/aimirror/cluster.key')
      expect(config.server.host, name).toBe('0.0.0.0')
      expect(config.server.port, name).toBe(8081)
      expect(config.cache.dir, name).toBe('/var/cache/aimirror')
      // Static peers name the other two services, never the node itself.
      const others = nodes.map(([n]) => n).filter(n => n !== name)
      expect(config.cluster.peers.map(p => p.split(':')[0]).sort(), name).toEqual(others)
      for (const p of config.cluster.peers) expect(staticPeerAddress(p).toString()).toMatch(/^\/dns\/node\d\/tcp\/4001$/)
    }
  })

  it('a cache volume per node, the key volume shared read-only and written once by keygen', () => {
    const caches = nodes.map(([, s]) => s.volumes?.find(v => v.endsWith(':/var/cache/aimirror'))?.split(':')[0])
    expect(new Set(caches).size).toBe(3)
    for (const [, s] of nodes) {
      expect(s.volumes).toContain('cluster-key:/run/aimirror:ro')
      expect(s.depends_on?.keygen?.condition).toBe('service_completed_successfully')
    }
    expect(doc.services.keygen?.volumes).toEqual(['cluster-key:/run/aimirror'])
    expect(doc.services.keygen?.entrypoint?.join(' ')).toContain('keygen /run/aimirror/cluster.key')
    for (const v of ['cluster-key', 'cache1', 'cache2', 'cache3']) expect(Object.keys(doc.volumes)).toContain(v)
  })

  it('the Dockerfile copies folders that exist and starts the CLI', () => {
    const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8')
    for (const m of dockerfile.matchAll(/^COPY (\S+)/gm)) {
      for (const path of (m[1] as string).split(' ')) expect(existsSync(`${root}${path}`), path).toBe(true)
    }
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/aimirror\.js"\]$/m)
    expect(existsSync(`${root}bin/aimirror.js`)).toBe(true)
  })
})
