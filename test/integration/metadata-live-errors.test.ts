import { gunzipSync } from 'node:zlib'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { startPypiIndex } from '../fixtures/upstreams/pypi-index.ts'
import type { PypiIndex } from '../fixtures/upstreams/pypi-index.ts'
import { startNpmRegistry } from '../fixtures/upstreams/npm-registry.ts'
import type { NpmRegistry } from '../fixtures/upstreams/npm-registry.ts'

/** Upstream answers the mirror does not keep (here 503) reach the client in an encoding it takes. */
describe('an upstream error on an index page or packument', () => {
  let pypi: PypiIndex
  let reg: NpmRegistry
  let node: TestNode

  beforeAll(async () => {
    pypi = await startPypiIndex({ packages: [{ name: 'tinya', version: '1.0' }] })
    reg = await startNpmRegistry([{ name: 'tiny-a', version: '1.0.0' }])
    node = await startTestNode({
      content_rewrite: { targets: [pypi.filesUrl] },
      rules: [
        { name: 'pypi-simple', path_prefix: '/simple/', upstream: pypi.url, handler: 'pypi', strategy: 'proxy', metadata_ttl_s: 600 },
        { name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: reg.url, handler: 'npm', strategy: 'proxy', metadata_ttl_s: 600 }
      ]
    })
    pypi.settings.status = 503
    reg.settings.status = 503
  })
  afterAll(async () => {
    await node.stop()
    await pypi.close()
    await reg.close()
  })

  for (const path of ['/simple/tinya/', '/npm/tiny-a']) {
    for (const acceptEncoding of [undefined, 'identity', 'gzip']) {
      it(`${path}, Accept-Encoding ${acceptEncoding ?? 'none'}: the status and a body the client can read`, async () => {
        const res = await request(node.url + path, { headers: acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding } })
        const body = Buffer.from(await res.body.arrayBuffer())
        expect(res.statusCode).toBe(503)
        const coding = res.headers['content-encoding']
        // Plain, or gzip only to a client that asked for it.
        const text = coding === 'gzip' && acceptEncoding === 'gzip' ? gunzipSync(body) : body
        expect(coding === undefined || (coding === 'gzip' && acceptEncoding === 'gzip')).toBe(true)
        expect(text.length).toBeGreaterThan(0)
        expect(text[0] === 0x1f && text[1] === 0x8b).toBe(false)
      })
    }
  }
})
