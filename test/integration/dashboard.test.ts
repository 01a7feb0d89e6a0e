import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFileServer } from '../fixtures/upstreams/file-server.ts'
import type { FileServer } from '../fixtures/upstreams/file-server.ts'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'

/** Just enough of a DOM for the page's script: elements with children, text and a few properties. */
class FakeNode {
  readonly tag: string
  children: FakeNode[] = []
  textContent = ''
  className = ''
  colSpan = 1
  max = 0
  value = 0
  constructor (tag: string) { this.tag = tag }
  append (...nodes: FakeNode[]): void { this.children.push(...nodes) }
  replaceChildren (): void { this.children = [] }
  /** Its text and its descendants', in order. */
  text (): string { return [this.textContent, ...this.children.map(c => c.text())].join(' ') }
}

describe('/dashboard', () => {
  let files: FileServer
  let node: TestNode
  beforeAll(async () => {
    files = await startFileServer({ files: { '/a.bin': { size: 3 << 20, seed: 1 } }, perConnectionBps: 1 << 20 })
    node = await startTestNode({ rules: [{ name: 'f', path_prefix: '/f/', strip_prefix: true, upstream: files.url, strategy: 'parallel', min_size: 0, concurrency: 2 }] })
  })
  afterAll(async () => {
    await node?.stop()
    await files?.close()
  })

  it('is one page whose script renders the node\'s numbers and its downloads under way', async () => {
    const res = await send(node.url, { path: '/dashboard' })
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(res.headers['content-security-policy']).toContain("connect-src 'self'")
    const script = /<script>([\s\S]*)<\/script>/.exec(res.body.toString())?.[1]
    expect(script).toBeDefined()

    // A download under way while the page looks (about 1.5 s: 1 MiB/s per connection, two connections).
    const downloading = send(node.url, { path: '/f/a.bin' })
    await new Promise(resolve => setTimeout(resolve, 300))
    const byId = new Map<string, FakeNode>()
    const context: Record<string, unknown> = {
      Node: FakeNode,
      document: {
        getElementById: (id: string) => { if (!byId.has(id)) byId.set(id, new FakeNode(id)); return byId.get(id) },
        createElement: (tag: string) => new FakeNode(tag)
      },
      fetch: async (path: string, init: RequestInit) => await fetch(node.url + path, init),
      setInterval: () => 0
    }
    runInNewContext(script as string, context)
    // The script's own functions are the context's: one refresh, awaited, renders everything.
    await (context.refresh as () => Promise<void>)()
    expect(byId.get('error')?.text().trim()).toBe('')
    expect(byId.get('cards')?.text()).toContain('spared the upstream')
    expect(byId.get('downloads')?.text()).toContain(`${files.url}/a.bin`)
    expect(byId.get('nodes')?.text()).toContain('this node')
    expect(byId.get('peers')?.text()).toContain('none')
    expect((await downloading).body.length).toBe(3 << 20)
  })
})
