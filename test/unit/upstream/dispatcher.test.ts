import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent, ProxyAgent } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { createUpstreamDispatcher } from '../../../node/upstream/dispatcher.ts'
import { requestUpstream } from '../../../node/upstream/request.ts'
import { isAimirrorError } from '../../../node/errors.ts'
import { makeConfig } from '../../helpers/config.ts'
import { deadPort, startUpstream } from '../../helpers/upstream.ts'
import type { FakeUpstream } from '../../helpers/upstream.ts'

const closers: Array<() => Promise<unknown>> = []
afterEach(async () => { for (const c of closers.splice(0)) await c() })

async function codeOf (p: Promise<unknown>): Promise<string | undefined> {
  try { await p } catch (err) { return isAimirrorError(err) ? err.code : String(err) }
  return undefined
}

describe('upstream dispatcher', () => {
  it('is an Agent by default and a ProxyAgent with server.upstream_proxy', async () => {
    const direct = createUpstreamDispatcher(makeConfig({ rules: [] }).server)
    const proxied = createUpstreamDispatcher(makeConfig({ rules: [], server: { upstream_proxy: 'http://127.0.0.1:1' } }).server)
    closers.push(async () => await direct.close(), async () => await proxied.close())
    expect(direct).toBeInstanceOf(Agent)
    expect(proxied).toBeInstanceOf(ProxyAgent)
  })

  it('sends every request through the configured forward proxy', async () => {
    const seen: string[] = []
    const proxy = createServer((req, res) => { seen.push(req.url ?? ''); res.end('via proxy') })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    closers.push(async () => { proxy.closeAllConnections(); await new Promise((resolve) => proxy.close(resolve)) })
    const port = (proxy.address() as AddressInfo).port
    const dispatcher = createUpstreamDispatcher(makeConfig({ rules: [], server: { upstream_proxy: `http://127.0.0.1:${port}` } }).server)
    closers.push(async () => await dispatcher.close())
    const res = await requestUpstream(dispatcher, { url: new URL('http://upstream.invalid:9/simple/x/?a=1'), method: 'GET', headers: [] })
    expect(Buffer.concat(await res.body.toArray() as Buffer[]).toString()).toBe('via proxy')
    expect(seen).toEqual(['http://upstream.invalid:9/simple/x/?a=1'])
  })

  it('reports refused connections and slow headers with catalogue codes', async () => {
    const dispatcher = createUpstreamDispatcher(makeConfig({ rules: [], server: { read_timeout_s: 0.2 } }).server)
    closers.push(async () => await dispatcher.destroy())
    const port = await deadPort()
    expect(await codeOf(requestUpstream(dispatcher, { url: new URL(`http://127.0.0.1:${port}/`), method: 'GET', headers: [] })))
      .toBe('ERR_UPSTREAM_UNREACHABLE')
    const silent: FakeUpstream = await startUpstream(() => {})
    closers.push(silent.close)
    expect(await codeOf(requestUpstream(dispatcher, { url: new URL(`${silent.url}/`), method: 'GET', headers: [] })))
      .toBe('ERR_UPSTREAM_TIMEOUT')
  })

  it('returns raw bytes and raw header lines (no decoding, repeats kept)', async () => {
    const up = await startUpstream((_req, res) => {
      res.setHeader('content-encoding', 'gzip')
      res.setHeader('link', ['<a>; rel="a"', '<b>; rel="b"'])
      res.end(Buffer.from([0x1f, 0x8b, 1, 2, 3]))
    })
    closers.push(up.close)
    const dispatcher = createUpstreamDispatcher(makeConfig({ rules: [] }).server)
    closers.push(async () => await dispatcher.close())
    const res = await requestUpstream(dispatcher, { url: new URL(`${up.url}/`), method: 'GET', headers: ['accept', 'a', 'accept', 'b'] })
    expect(Buffer.concat(await res.body.toArray() as Buffer[])).toEqual(Buffer.from([0x1f, 0x8b, 1, 2, 3]))
    const links = res.rawHeaders.filter((_, i) => i % 2 === 1 && res.rawHeaders[i - 1]?.toLowerCase() === 'link')
    expect(links).toEqual(['<a>; rel="a"', '<b>; rel="b"'])
  })
})
