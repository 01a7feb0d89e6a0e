/**
 * A wheel's PEP 658 `.metadata` request starts the wheel's download in the background (pip asks for
 * the wheels only after resolving, one at a time), and the client's later request for the wheel is
 * served from that one download.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { send } from '../helpers/client.ts'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startPypiIndex } from '../fixtures/upstreams/pypi-index.ts'
import type { PypiIndex } from '../fixtures/upstreams/pypi-index.ts'
import type { BuiltWheel } from '../fixtures/upstreams/pypi-wheel.ts'

const JSON_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01'

let pypi: PypiIndex
let node: TestNode

beforeEach(async () => {
  pypi = await startPypiIndex({ packages: [{ name: 'bigone', version: '1.0', padBytes: 600_000 }] })
  node = await startTestNode({
    content_rewrite: { targets: [pypi.filesUrl] },
    rules: [
      { name: 'pypi-files', path_prefix: '/packages/', upstream: pypi.filesUrl, handler: 'pypi', strategy: 'parallel', min_size: 0, concurrency: 4 },
      { name: 'pypi-simple', path_prefix: '/simple/', upstream: pypi.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: 600 }
    ]
  })
})
afterEach(async () => {
  await node.stop()
  await pypi.close()
})

function wheel (): { w: BuiltWheel, path: string } {
  const w = pypi.wheels.get('bigone-1.0-py3-none-any.whl')
  if (w === undefined) throw new Error('fixture')
  return { w, path: `/packages/${w.sha256.slice(0, 2)}/${w.sha256.slice(2, 4)}/${w.sha256.slice(4, 16)}/${w.filename}` }
}

/** Upstream GETs of the wheel itself (not its .metadata). */
const wheelGets = (filename: string): Array<{ range: string | undefined }> =>
  pypi.seen.filter(s => s.listener === 'files' && s.method === 'GET' && s.url.endsWith(`/${filename}`)).map(s => ({ range: s.headers.range as string | undefined }))

async function waitFor (what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await sleep(25)
  if (!ok()) throw new Error(`timed out waiting for ${what}`)
}

describe('PyPI prefetch', () => {
  it('a .metadata request starts the wheel download; the wheel request takes its bytes from it, once', async () => {
    const { w, path } = wheel()
    expect((await send(node.url, { path: '/simple/bigone/', headers: { accept: JSON_ACCEPT } })).status).toBe(200)
    const meta = await send(node.url, { path: `${path}.metadata` })
    expect(meta.body.equals(w.metadata)).toBe(true)
    await waitFor('the prefetch to reach upstream', () => wheelGets(w.filename).length > 0)

    const res = await send(node.url, { path })
    expect(res.status).toBe(200)
    expect(res.body.equals(w.data)).toBe(true)
    // Every byte of the wheel asked for upstream exactly once: the client joined the prefetch.
    const asked = wheelGets(w.filename).reduce((n, g) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(g.range ?? '')
      return n + (m === null ? w.data.length : Number(m[2]) - Number(m[1]) + 1)
    }, 0)
    expect(asked).toBe(w.data.length)
  })

  it('does not prefetch a file whose digest the mirror has not learnt from an index page', async () => {
    const { w, path } = wheel()
    const meta = await send(node.url, { path: `${path}.metadata` })
    expect(meta.status).toBe(200)
    await sleep(300)
    expect(wheelGets(w.filename)).toHaveLength(0)
  })
})
