import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { urlIdentity } from '../../node/fetch/identity.ts'
import { generatedSha256, startFileServer } from '../fixtures/upstreams/file-server.ts'
import { closedAfterEach, credentialGate, makeRig, sha256Of, until } from './fetch-helpers.ts'

const MiB = 1 << 20
const SIZE = 2 * MiB + 3
const track = closedAfterEach()

describe('a file fetched with a client\'s credentials', () => {
  it('is given to other clients only when the upstream lets them have it', async () => {
    const state = { locked: true, requests: 0 }
    const server = track(await startFileServer({ files: { '/p.bin': { size: SIZE, seed: 5 } }, onRequest: credentialGate(state) }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/p.bin')
    const as = async (authorization?: string) => await rig.fetcher.acquire(urlIdentity(url), { url, headers: authorization === undefined ? {} : { authorization } }, { chunkSize: 512 * 1024, concurrency: 2 })

    const owner = await as('Bearer good')
    if (owner.kind !== 'blob') throw new Error(`expected a blob, got ${owner.kind}`)
    expect((await sha256Of(owner.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 5))
    owner.release()
    await until(() => rig.store.stats().file_count === 1)

    for (const who of [undefined, 'Bearer bad']) {
      const other = await as(who)
      expect(other.kind).toBe('upstream-response')
      if (other.kind === 'upstream-response') expect(other.status).toBe(401)
    }
    // The client it was fetched for needs no check (also with the upstream gone).
    const before = state.requests
    const again = await as('Bearer good')
    expect(again.kind === 'blob' && again.from).toBe('cache')
    if (again.kind === 'blob') again.release()
    expect(state.requests).toBe(before)
    // Once the upstream serves it to anyone, so does the cache.
    state.locked = false
    const open = await as()
    expect(open.kind === 'blob' && open.from).toBe('cache')
    if (open.kind === 'blob') open.release()
  })

  /** Single sign-on in front of the files: without credentials, a redirect to a page that answers 200. */
  const signIn = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.url === '/login') { res.writeHead(200, { 'content-type': 'text/html', 'content-length': 22 }); res.end('<html>sign in</html>\n\n'); return true }
    if (req.headers.authorization === 'Bearer good') return false
    res.writeHead(302, { location: '/login', 'content-length': 0 })
    res.end()
    return true
  }

  it('an upstream that sends other clients to a sign-in page (a 302 to a 200 page) keeps it from them', async () => {
    const server = track(await startFileServer({ files: { '/sso/p.bin': { size: SIZE, seed: 6 } }, onRequest: signIn }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/sso/p.bin')
    const as = async (authorization?: string) => await rig.fetcher.acquire(urlIdentity(url), { url, headers: authorization === undefined ? {} : { authorization } }, { chunkSize: 512 * 1024, concurrency: 2 })
    const owner = await as('Bearer good')
    if (owner.kind !== 'blob') throw new Error(`expected a blob, got ${owner.kind}`)
    expect((await sha256Of(owner.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 6))
    owner.release()
    await until(() => rig.store.stats().file_count === 1)
    // (The node's own check without credentials, right after the download, was led to the page too.)
    await new Promise(resolve => setTimeout(resolve, 300))
    const other = await as()
    expect(other.kind).toBe('upstream-response')
    if (other.kind === 'upstream-response') expect(other.body.toString()).toContain('sign in')
  })

  it('keyed by the URL it ends at: where it led a client without credentials is not where it leads one with them', async () => {
    const server = track(await startFileServer({ files: { '/sso/q.bin': { size: SIZE, seed: 7 } }, onRequest: signIn }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/sso/q.bin')
    const as = async (authorization?: string) => await rig.fetcher.acquire(urlIdentity(url), { url, headers: authorization === undefined ? {} : { authorization } }, { chunkSize: 512 * 1024, concurrency: 2, keyByFinalUrl: true })
    const page = await as()
    if (page.kind !== 'blob') throw new Error(`expected a blob, got ${page.kind}`)
    expect(page.meta.size).toBe(22)
    page.release()
    await until(() => rig.store.stats().file_count === 1)
    const owner = await as('Bearer good')
    if (owner.kind !== 'blob') throw new Error(`expected a blob, got ${owner.kind}`)
    expect((await sha256Of(owner.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 7))
    owner.release()
  })

  it('joining its download in flight is checked the same way', async () => {
    const state = { locked: true, requests: 0 }
    const server = track(await startFileServer({ files: { '/p.bin': { size: SIZE, seed: 6 } }, perConnectionBps: MiB, onRequest: credentialGate(state) }))
    const rig = track(await makeRig())
    const url = new URL(server.url + '/p.bin')
    const owner = await rig.fetcher.acquire(urlIdentity(url), { url, headers: { authorization: 'Bearer good' } }, { chunkSize: 512 * 1024, concurrency: 2 })
    if (owner.kind !== 'blob') throw new Error(`expected a blob, got ${owner.kind}`)
    expect(owner.from).toBe('download')
    const anonymous = await rig.fetcher.acquire(urlIdentity(url), { url }, {})
    expect(anonymous.kind).toBe('upstream-response')
    if (anonymous.kind === 'upstream-response') expect(anonymous.status).toBe(401)
    expect((await sha256Of(owner.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 6))
    owner.release()
  })

  it('counts a signature in the URL the client sent as its credentials: the bare URL gets the upstream\'s answer', async () => {
    let requests = 0
    const server = track(await startFileServer({
      files: { '/s.bin': { size: SIZE, seed: 7 } },
      onRequest: (req, res) => {
        requests++
        // A presigned URL: only a valid signature gets the object.
        if (new URL(req.url ?? '/', 'http://x').searchParams.get('X-Amz-Signature') === 'good') return false
        res.writeHead(403, { 'content-type': 'application/xml' })
        res.end('<Error><Code>AccessDenied</Code></Error>')
        return true
      }
    }))
    const rig = track(await makeRig())
    const signed = (signature: string, date: string): URL => new URL(`${server.url}/s.bin?X-Amz-Date=${date}&X-Amz-Expires=300&X-Amz-Signature=${signature}`)
    const as = async (url: URL) => await rig.fetcher.acquire(urlIdentity(url), { url }, { chunkSize: 512 * 1024, concurrency: 2 })

    const owner = await as(signed('good', '1'))
    if (owner.kind !== 'blob') throw new Error(`expected a blob, got ${owner.kind}`)
    expect((await sha256Of(owner.open(0, SIZE))).hex).toBe(generatedSha256(SIZE, 7))
    owner.release()
    await until(() => rig.store.stats().file_count === 1)

    for (const url of [new URL(`${server.url}/s.bin`), signed('bad', '2')]) {
      const other = await as(url)
      expect(other.kind).toBe('upstream-response')
      if (other.kind === 'upstream-response') expect(other.status).toBe(403)
    }
    // Another valid signature: the upstream says yes to one byte, the rest comes from the cache.
    const before = requests
    const renewed = await as(signed('good', '3'))
    expect(renewed.kind === 'blob' && renewed.from).toBe('cache')
    if (renewed.kind === 'blob') renewed.release()
    expect(requests).toBe(before + 1)
  })
})
