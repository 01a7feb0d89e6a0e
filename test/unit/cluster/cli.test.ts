import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseCliArgs, UsageError } from '../../../cli/args.ts'
import { addressesOf, formatBytes, nodeUrl, renderClusterStats, renderPeers, runKeygen, runPeers, runStats } from '../../../cli/cluster-commands.ts'
import { parseConfig } from '../../../config/load.ts'
import { clusterTotals } from '../../../node/cluster/view.ts'
import type { NodeView } from '../../../node/cluster/view.ts'
import { parseClusterKey } from '../../../protocol/membership.ts'

describe('cluster commands', () => {
  it('parses stats, peers and keygen', () => {
    expect(parseCliArgs(['stats', '--cluster', '--json'])).toMatchObject({ command: 'stats', cluster: true, json: true })
    expect(parseCliArgs(['peers', '--url', 'http://10.0.0.2:8081'])).toMatchObject({ command: 'peers', url: 'http://10.0.0.2:8081', json: false })
    expect(parseCliArgs(['keygen', 'k.key'])).toMatchObject({ command: 'keygen', file: 'k.key' })
    expect(() => parseCliArgs(['peers', 'extra'])).toThrow(UsageError)
    expect(() => parseCliArgs(['env', 'extra'])).toThrow('env: unexpected argument "extra"')
  })

  it('asks the configured listen address, a wildcard meaning this machine', () => {
    expect(nodeUrl(parseConfig({ server: { host: '0.0.0.0', port: 8082 } }, { env: {} }))).toBe('http://127.0.0.1:8082')
    expect(nodeUrl(parseConfig({}, { env: {} }), 'http://h:1/')).toBe('http://h:1')
    expect(() => nodeUrl(parseConfig({}, { env: {} }), 'notaurl')).toThrow(UsageError)
    expect(() => nodeUrl(parseConfig({}, { env: {} }), 'ftp://h/')).toThrow(UsageError)
  })

  it('a --url that answers, but not as aimirror does, is a usage error, not a crash', async () => {
    const { createServer } = await import('node:http')
    const server = createServer((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(req.url === '/stats' ? '[1]' : '{"x":1}') })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    try {
      const config = parseConfig({}, { env: {} })
      for (const args of [['peers', '--url', `http://127.0.0.1:${port}`], ['stats', '--cluster', '--url', `http://127.0.0.1:${port}`], ['stats', '--url', `http://127.0.0.1:${port}`]]) {
        const parsed = parseCliArgs(args)
        const run = parsed.command === 'peers' ? runPeers(config, parsed) : runStats(config, parsed)
        await expect(run).rejects.toThrow(UsageError)
      }
    } finally {
      server.close()
    }
  })

  it('renders a readable table with totals', () => {
    const nodes: NodeView[] = [
      { peer_id: '12D3KooWAAAAAAAAAAAAAAAAAAAA', host: 'gpu-box-1', self: true, reachable: true, cache: { size_bytes: 3 << 20, blobs: 2, max_bytes: 0 }, hits: 3, misses: 1, bytes_from_cache: 1 << 20, bytes_from_peers: 2 << 20, bytes_from_upstream: 5, bytes_to_peers: 0, active_downloads: 0, peer_bans: 2 },
      { peer_id: '12D3KooWBBBBBBBBBBBBBBBBBBBB', self: false, reachable: false, error: 'NOT_MEMBER' },
      { peer_id: '12D3KooWCCCCCCCCCCCCCCCCCCCC', self: false, reachable: false, error: 'left', left_at: new Date(Date.now() - 5 * 60_000).toISOString(), address: '/ip4/10.0.0.7/tcp/4001' }
    ]
    const out = renderClusterStats({ enabled: true, cluster: 'office', mode: 'keyed', nodes, totals: clusterTotals(nodes) })
    expect(out).toContain('cluster "office" (keyed), 1 of 3 nodes reachable')
    // A member that left keeps the address it was connected from.
    expect(out).toMatch(/12D3Ko…CCCCCC\s+-\s+10\.0\.0\.7\s+unreachable \(left 5 min ago\)/)
    expect(out).toMatch(/total\s+3\.0 MiB\s+2\s+3\s+1/)
    expect(out).toContain('unreachable (NOT_MEMBER)')
    // The last column is the bans, per node and in total.
    expect(out).toMatch(/\bbans\n/)
    expect(out).toMatch(/total(\s+\S+)+\s+2\n/)
    expect(out).toContain('hit rate 75.0%, upstream spared 3.0 MiB')
    expect(renderPeers({ enabled: false, self: null, peers: [] })).toContain('cluster off')
    // Each node's machine, from /peers: the first address that is not loopback.
    const addresses = addressesOf({
      enabled: true,
      self: { peer_id: '12D3KooWAAAAAAAAAAAAAAAAAAAA', addresses: ['/ip4/127.0.0.1/tcp/4001/p2p/x', '/ip4/10.0.0.5/tcp/4001/p2p/x'], data_port: 4002 },
      peers: [{ peer_id: '12D3KooWBBBBBBBBBBBBBBBBBBBB', member: true, banned: false, addresses: ['/ip4/10.0.0.6/tcp/4001'], since: null }]
    })
    expect([...addresses]).toEqual([['12D3KooWAAAAAAAAAAAAAAAAAAAA', '10.0.0.5'], ['12D3KooWBBBBBBBBBBBBBBBBBBBB', '10.0.0.6']])
    // Nodes on one machine (static peers on 127.0.0.1): loopback is all there is, and says so.
    const oneMachine = addressesOf({ enabled: true, self: null, peers: [{ peer_id: 'p', member: true, banned: false, addresses: ['/ip4/127.0.0.1/tcp/4101'], since: null }] })
    expect([...oneMachine]).toEqual([['p', '127.0.0.1']])
    const placed = renderClusterStats({ enabled: true, cluster: 'office', mode: 'keyed', nodes, totals: clusterTotals(nodes) }, addresses)
    expect(placed).toMatch(/^node\s+host\s+address\s+cache/m)
    expect(placed).toMatch(/12D3Ko…AAAAAA \*\s+gpu-box-1\s+10\.0\.0\.5\s+3\.0 MiB/)
    expect(placed).toMatch(/12D3Ko…BBBBBB\s+-\s+10\.0\.0\.6\s+unreachable/)
    expect(formatBytes(1536)).toBe('1.5 KiB')
  })

  it('keygen writes a 0600 key file and never overwrites one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-keygen-'))
    try {
      const file = join(dir, 'cluster.key')
      const write = process.stderr.write
      process.stderr.write = () => true
      try {
        expect(await runKeygen(file)).toBe(0)
      } finally {
        process.stderr.write = write
      }
      expect(parseClusterKey(await readFile(file, 'utf8'))).toHaveLength(32)
      expect((await stat(file)).mode & 0o777).toBe(0o600)
      const again = await runKeygen(file).then(() => null, (err: unknown) => err)
      expect(again).toBeInstanceOf(UsageError)
      // A directory, or a file in one that does not exist: said as it is.
      await expect(runKeygen(dir)).rejects.toThrow(`${dir} is a directory; name the key file to write`)
      await expect(runKeygen(join(dir, 'no', 'k.key'))).rejects.toThrow('its directory does not exist')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
