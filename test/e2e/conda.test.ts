/**
 * rattler (@conda-org/rattler: the repodata gateway and solver of pixi, as WASM) solving against a
 * channel mounted at /conda-forge through the mirror, then downloading the solved packages like an
 * installer and checking them against the solution's sha256; again with the channel stopped.
 */
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { afterEach, describe, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startCondaChannel } from '../fixtures/upstreams/conda-channel.ts'
import type { CondaChannel } from '../fixtures/upstreams/conda-channel.ts'

interface Solved { packageName: string, version: string, url: string, sha256?: string }
type SimpleSolve = (specs: string[], channels: string[], platforms: string[], locked: unknown[]) => Promise<Solved[]>
// The package's ESM entry targets bundlers; Node loads its CommonJS build.
const { simpleSolve } = createRequire(import.meta.url)('@conda-org/rattler') as { simpleSolve: SimpleSolve }

let chan: CondaChannel | null = null
let node: TestNode | null = null
afterEach(async () => {
  await node?.stop()
  await chan?.close()
  node = null
  chan = null
})

async function solveAndDownload (channel: string): Promise<Map<string, string>> {
  const solved = await simpleSolve(['tinyc'], [channel], ['linux-64', 'noarch'], [])
  const got = new Map<string, string>()
  for (const p of solved) {
    expect(p.url.startsWith(channel)).toBe(true)
    const res = await fetch(p.url)
    expect(res.status).toBe(200)
    const sha = createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')
    expect(sha).toBe(p.sha256)
    got.set(p.packageName, p.version)
  }
  return got
}

describe('rattler through the mirror', () => {
  it('solves and downloads, then again with the channel stopped', async () => {
    chan = await startCondaChannel({
      channel: 'conda-forge',
      packages: [
        { name: 'tinyd', version: '1.0' },
        { name: 'tinyd', version: '1.1' },
        { name: 'tinyc', version: '1.0', depends: ['tinyd >=1.0'] },
        { name: 'other', version: '2.0', subdir: 'linux-64' }
      ]
    })
    node = await startTestNode({
      rules: [
        { name: 'conda-forge-packages', path_prefix: '/conda-forge/', pattern: '\\.(?:conda|tar\\.bz2)$', strip_prefix: true, upstream: chan.url, handler: 'conda', strategy: 'parallel' },
        { name: 'conda-forge', path_prefix: '/conda-forge/', strip_prefix: true, upstream: chan.url, handler: 'conda', strategy: 'proxy', metadata_ttl_s: 0 }
      ]
    })
    const channel = `${node.url}/conda-forge`
    const first = await solveAndDownload(channel)
    expect(Object.fromEntries(first)).toEqual({ tinyc: '1.0', tinyd: '1.1' })
    const asked = chan.seen.map(s => s.url)
    expect(asked.some(u => u.endsWith('/noarch/repodata.json.zst'))).toBe(true)

    await chan.close()
    chan = null
    const second = await solveAndDownload(channel)
    expect(Object.fromEntries(second)).toEqual({ tinyc: '1.0', tinyd: '1.1' })
  }, 60_000)
})
