import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from 'undici'
import { parseConfig } from '../../config/load.ts'
import type { Config } from '../../config/types.ts'
import { createFetchEngine } from '../../node/fetch/engine.ts'
import type { FetchEngine } from '../../node/fetch/engine.ts'
import { createNode } from '../../node/index.ts'
import type { AimirrorNode } from '../../node/index.ts'
import { silent } from './fetch-helpers.ts'

export interface EngineNode {
  node: AimirrorNode
  engine: FetchEngine
  config: Config
  url: string
  cacheDir: string
  stop: () => Promise<void>
}

/** A node on 127.0.0.1:0 whose `parallel` rules go through a real fetch engine and blob store. */
export async function startEngineNode (doc: Record<string, unknown> & { rules: unknown[] }, cacheDir?: string): Promise<EngineNode> {
  const dir = cacheDir ?? await mkdtemp(join(tmpdir(), 'aimirror-engine-'))
  const config = parseConfig({
    ...doc,
    server: { host: '127.0.0.1', port: 0, connect_timeout_s: 2, read_timeout_s: 5, shutdown_timeout_s: 2, ...(doc.server as object | undefined) },
    cache: { dir, ...(doc.cache as object | undefined) },
    logging: { level: 'silent' }
  }, { env: {} })
  const dispatcher = new Agent({ connections: 256 })
  const engine = createFetchEngine(config, { dispatcher, logger: silent })
  await engine.start()
  const node = createNode(config, {
    logger: silent,
    dispatcher,
    parallel: base => engine.parallel(base.proxy),
    downloads: engine.downloads,
    cacheStats: engine.cacheStats
  })
  await node.start()
  return {
    node,
    engine,
    config,
    url: node.address().url,
    cacheDir: dir,
    async stop () {
      await node.stop({ deadlineMs: 2000 })
      await engine.stop()
      await dispatcher.destroy()
      if (cacheDir === undefined) await rm(dir, { recursive: true, force: true })
    }
  }
}
