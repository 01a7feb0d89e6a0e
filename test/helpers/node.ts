import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseConfig } from '../../config/load.ts'
import type { Config } from '../../config/types.ts'
import { createNode } from '../../node/index.ts'
import type { AimirrorNode, NodeOverrides } from '../../node/index.ts'

export interface TestNode {
  readonly node: AimirrorNode
  readonly config: Config
  /** http://127.0.0.1:port of the running node. */
  readonly url: string
  readonly cacheDir: string
  stop: () => Promise<void>
}

export type Doc = Record<string, unknown> & { server?: Record<string, unknown>, rules: unknown[] }

/**
 * Starts a node on 127.0.0.1:0 from a config document (as a user would write it, validated by the real
 * loader), with silent logs and a fresh temporary cache dir that stop() removes.
 */
export async function startTestNode (doc: Doc, overrides: NodeOverrides = {}): Promise<TestNode> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'aimirror-node-'))
  const config = parseConfig({
    ...doc,
    server: { host: '127.0.0.1', port: 0, connect_timeout_s: 2, read_timeout_s: 5, shutdown_timeout_s: 2, ...doc.server },
    cache: { dir: cacheDir, ...(doc.cache as Record<string, unknown> | undefined) },
    logging: { level: process.env.TEST_NODE_LOG ?? 'silent' },
    // Tests never send multicast: a test that turns the cluster on gets loopback addresses and no mDNS.
    cluster: { listen: ['/ip4/127.0.0.1/tcp/0'], data_host: '127.0.0.1', data_port: 0, ...(doc.cluster as Record<string, unknown> | undefined), mdns: false }
  }, { env: {} })
  const node = createNode(config, overrides)
  try {
    await node.start()
  } catch (err) {
    // A node that failed to start has stopped what it started; its cache dir goes too.
    await rm(cacheDir, { recursive: true, force: true })
    throw err
  }
  return {
    node,
    config,
    url: node.address().url,
    cacheDir,
    async stop () {
      await node.stop({ deadlineMs: 2000 })
      await rm(cacheDir, { recursive: true, force: true })
    }
  }
}
