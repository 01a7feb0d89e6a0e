import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../../config/errors.ts'
import { loadConfig, parseConfig } from '../../../config/load.ts'

const env = { HOME: '/home/u' }

function problems (fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  throw new Error('expected a ConfigError')
}

describe('cluster config', () => {
  it('is off by default, with mDNS on for when it is turned on', () => {
    const c = loadConfig({ env })
    expect(c.cluster.enabled).toBe(false)
    expect(c.cluster.mdns).toBe(true)
    expect(c.cluster.key_file).toBe(null)
    expect(c.cluster.listen).toEqual(['/ip4/0.0.0.0/tcp/4001'])
  })

  it('AIMIRROR_CLUSTER and AIMIRROR_MDNS override the file', () => {
    const on = loadConfig({ env: { ...env, AIMIRROR_CLUSTER: '1', AIMIRROR_MDNS: '0' } })
    expect(on.cluster.enabled).toBe(true)
    expect(on.cluster.mdns).toBe(false)
    const off = loadConfig({ env: { ...env, AIMIRROR_CLUSTER: 'off' } })
    expect(off.cluster.enabled).toBe(false)
  })

  it('static peers from the environment are comma-separated', () => {
    const c = loadConfig({ env: { ...env, AIMIRROR_CLUSTER_PEERS: '10.0.0.5:4001, /ip4/10.0.0.6/tcp/4001' } })
    expect(c.cluster.peers).toEqual(['10.0.0.5:4001', '/ip4/10.0.0.6/tcp/4001'])
  })

  it('key_file is made absolute', () => {
    const c = parseConfig({ cluster: { key_file: 'keys/cluster.key' } }, { env, cwd: '/srv' })
    expect(c.cluster.key_file).toBe('/srv/keys/cluster.key')
  })

  it.each([
    [{ peers: ['10.0.0.5'] }, 'cluster.peers[0]'],
    [{ listen: ['0.0.0.0:4001'] }, 'cluster.listen[0]'],
    [{ name: 'no spaces here' }, 'cluster.name'],
    [{ mdns: 'maybe' }, 'cluster.mdns'],
    [{ data_port: 70000 }, 'cluster.data_port']
  ])('%j is rejected at %s', (cluster, where) => {
    const found = problems(() => parseConfig({ cluster }, { env }))
    expect(found.some((p) => p.startsWith(where))).toBe(true)
  })

  it('a node\'s own ports clash: named at the cluster field, only when the cluster is on', () => {
    expect(problems(() => parseConfig({ server: { port: 8081 }, cluster: { enabled: true, data_port: 8081 } }, { env }))
      .some((p) => p.startsWith('cluster.data_port') && p.includes('server.port'))).toBe(true)
    expect(problems(() => parseConfig({ cluster: { enabled: true, listen: ['/ip4/0.0.0.0/tcp/4002'] } }, { env }))
      .some((p) => p.startsWith('cluster.listen[0]') && p.includes('cluster.data_port'))).toBe(true)
    expect(parseConfig({ server: { port: 4002 }, cluster: { enabled: false } }, { env }).server.port).toBe(4002)
    expect(parseConfig({ cluster: { enabled: true } }, { env }).cluster.data_port).toBe(4002)
  })

  it('a bad AIMIRROR_MDNS is reported by its name', () => {
    const found = problems(() => loadConfig({ env: { ...env, AIMIRROR_MDNS: 'perhaps' } }))
    expect(found.some((p) => p.startsWith('AIMIRROR_MDNS'))).toBe(true)
  })

  it('a bad peer in AIMIRROR_CLUSTER_PEERS is reported by the variable\'s name', () => {
    const found = problems(() => loadConfig({ env: { ...env, AIMIRROR_CLUSTER_PEERS: '10.0.0.5:4001, not a peer' } }))
    expect(found.some((p) => p.startsWith('AIMIRROR_CLUSTER_PEERS'))).toBe(true)
  })
})
