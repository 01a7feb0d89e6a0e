import { afterEach, expect, it } from 'vitest'
import { freePort } from '../fixtures/upstreams/oci-distribution.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'

const nodes: TestNode[] = []
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop()
})

/** Two nodes whose rules lead to each other: each one's config is fine on its own. */
async function twoNodesInALoop (strategy: 'proxy' | 'parallel'): Promise<[TestNode, TestNode]> {
  const [pa, pb] = [await freePort(), await freePort()]
  const rule = (to: number, from: string, next: string): Record<string, unknown> =>
    ({ name: from, path_prefix: `/${from}/`, strip_prefix: true, upstream: `http://127.0.0.1:${to}/${next}`, strategy, min_size: 0 })
  const a = await startTestNode({ server: { port: pa }, rules: [rule(pb, 'a', 'b')] })
  nodes.push(a)
  const b = await startTestNode({ server: { port: pb }, rules: [rule(pa, 'b', 'a')] })
  nodes.push(b)
  return [a, b]
}

it.each(['proxy', 'parallel'] as const)('a request that comes back to the node that sent it is refused at once (%s rules)', async (strategy) => {
  const [a] = await twoNodesInALoop(strategy)
  const started = Date.now()
  const res = await fetch(`${a.url}/a/file.bin`)
  const body = await res.json() as { error?: string, message?: string }
  expect(res.status).toBe(508)
  expect(body.error).toBe('ERR_REQUEST_LOOP')
  expect(body.message).toMatch(/leads to this node/)
  // Each node sent it on once: no storm, no waiting for timeouts.
  expect(Date.now() - started).toBeLessThan(3000)
})
