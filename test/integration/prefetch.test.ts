import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { parseConfig } from '../../config/load.ts'
import { mirrorPathOf, runPrefetch } from '../../cli/prefetch.ts'
import { createRouter } from '../../node/router/router.ts'
import { startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { json, send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { until } from './fetch-helpers.ts'

const MiB = 1 << 20

describe('mirrorPathOf: the mirror path that fetches an upstream URL', () => {
  const router = createRouter(parseConfig({
    rules: [
      { name: 'assets', path_prefix: '/assets/', strip_prefix: true, upstream: 'https://dl.example.com/store', strategy: 'parallel' },
      { name: 'wheels', path_prefix: '/packages/', upstream: 'https://files.example.org', strategy: 'parallel' },
      { name: 'models', pattern: '^/[^/]+/[^/]+/resolve/', upstream: 'https://hub.example.net', strategy: 'parallel' },
      { name: 'weights', path_prefix: '/weights/', strip_prefix: true, upstream: 'https://store.example.org', strategy: 'parallel', path_rewrite: [{ search: '/models/', replace: '/api/models/' }] }
    ]
  }, { env: {} }).rules)
  const base = 'http://127.0.0.1:8081'

  it('maps upstream URLs through the rule that sends the path back there', () => {
    expect(mirrorPathOf('https://dl.example.com/store/v1/tool.tar.gz', base, router)).toBe('/assets/v1/tool.tar.gz')
    expect(mirrorPathOf('https://files.example.org/packages/ab/cd/x-1.0-py3-none-any.whl', base, router)).toBe('/packages/ab/cd/x-1.0-py3-none-any.whl')
    expect(mirrorPathOf('https://hub.example.net/org/model/resolve/main/w.safetensors?download=1', base, router)).toBe('/org/model/resolve/main/w.safetensors?download=1')
  })

  it('undoes a rule\'s path_rewrite', () => {
    // Without undoing it, /weights/api/models/… would be sent to …/api/api/models/….
    expect(mirrorPathOf('https://store.example.org/api/models/llama/w.bin', base, router)).toBe('/weights/models/llama/w.bin')
  })

  it('takes mirror paths and the node\'s own URLs as they are (the node judges a path: --url may name another)', () => {
    expect(mirrorPathOf('/assets/a.bin', base, router)).toBe('/assets/a.bin')
    expect(mirrorPathOf('/nothing/here', base, router)).toBe('/nothing/here')
    expect(mirrorPathOf('http://127.0.0.1:8081/assets/a.bin', base, router)).toBe('/assets/a.bin')
    expect(mirrorPathOf('http://localhost:8081/assets/a.bin?x=1', base, router)).toBe('/assets/a.bin?x=1')
    expect(() => mirrorPathOf('http://localhost:9999/assets/a.bin', base, router)).toThrow(/no rule sends/)
  })

  it('refuses what no rule fetches, by name', () => {
    expect(() => mirrorPathOf('https://dl.example.com/elsewhere/x', base, router)).toThrow('no rule sends a request upstream to https://dl.example.com/elsewhere/x')
    expect(() => mirrorPathOf('https://files.example.org/simple/x/', base, router)).toThrow(/no rule sends/)
    expect(() => mirrorPathOf('ftp:/x', base, router)).toThrow(/no rule sends/)
    expect(() => mirrorPathOf('nonsense', base, router)).toThrow(/not a URL or a path/)
  })
})

describe('aimirror prefetch', () => {
  let files: FileServer
  let node: TestNode
  beforeAll(async () => {
    files = await startFileServer({ files: { '/a.bin': { size: 3 * MiB + 1, seed: 1 }, '/b.bin': { size: MiB, seed: 2 } }, perConnectionBps: 4 * MiB })
    node = await startTestNode({ rules: [{ name: 'f', path_prefix: '/f/', strip_prefix: true, upstream: files.url, strategy: 'parallel', min_size: 0, concurrency: 4 }] })
  })
  afterAll(async () => {
    await node?.stop()
    await files?.close()
  })

  it('fetches each target through the node into its cache, and says which failed', async () => {
    const out: string[] = []
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out.push(String(chunk)); return true })
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    let code: number
    try {
      code = await runPrefetch(node.config, { command: 'prefetch', config: undefined, flags: {}, url: node.url, targets: [`${files.url}/a.bin`, 'https://unknown.example/x.bin', '/f/b.bin', '/f/missing.bin', '/elsewhere/c.bin'], jobs: 2 })
    } finally {
      write.mockRestore()
      err.mockRestore()
    }
    expect(code).toBe(1)
    expect(out.join('')).toMatch(/^ok .* \/f\/a\.bin$/m)
    expect(out.join('')).toMatch(/^ok .* \/f\/b\.bin$/m)
    expect(out.join('')).toMatch(/^fail {2}\/f\/missing\.bin: 404/m)
    // A target no rule maps fails on its own line; the node says it serves no such path.
    expect(out.join('')).toMatch(/^fail {2}https:\/\/unknown\.example\/x\.bin: no rule sends a request upstream to https:\/\/unknown\.example\/x\.bin$/m)
    expect(out.join('')).toMatch(/^fail {2}\/elsewhere\/c\.bin: 404/m)
    // Each is committed once its last byte went out.
    await until(async () => (json(await send(node.url, { path: '/stats' })).cache as { file_count: number }).file_count === 2)
    // Fetched from the upstream once (the two at once share one download each).
    expect(files.stats.bytesFor('/a.bin')).toBeLessThan((3 * MiB + 1) * 1.1)
  })
})
