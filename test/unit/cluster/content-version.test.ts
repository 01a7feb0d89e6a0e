import { describe, expect, it } from 'vitest'
import { ContentVersion } from '../../../node/cluster/content-version.ts'
import type { PeerTicket } from '../../../node/cluster/peer-client.ts'

function ticket (o: { complete: boolean, digest: string, etag?: string | null, lastModified?: string | null }): PeerTicket {
  return {
    t: 'ticket',
    ticket: 'x',
    port: 4002,
    expiresAt: 0,
    size: 10,
    complete: o.complete,
    meta: { etag: o.etag ?? '"v1"', lastModified: o.lastModified ?? null, contentType: null, headers: {} },
    digest: o.digest,
    peer: 'p',
    name: 'url:https://example.test/f',
    base: 'http://10.0.0.1:4002'
  } as unknown as PeerTicket
}

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)

describe('which members\' copies of a URL a download reads', () => {
  it('complete holders must hold the same bytes: one whose sha256 differs from the first one read is not', () => {
    const told: Array<[string, string]> = []
    const version = new ContentVersion(true, { etag: '"v1"' }, digests => { told.push(digests) })
    expect(version.matches(ticket({ complete: true, digest: A }), true)).toBe(true)
    expect(version.matches(ticket({ complete: true, digest: B }), true)).toBe(false)
    expect(version.matches(ticket({ complete: true, digest: A }), true)).toBe(true)
    expect(version.matches(ticket({ complete: true, digest: B }), true)).toBe(false)
    // Said once per download.
    expect(told).toEqual([[A, B]])
    // Before the upstream answered too.
    const offline = new ContentVersion(true)
    expect(offline.matches(ticket({ complete: true, digest: B }), false)).toBe(true)
    expect(offline.matches(ticket({ complete: true, digest: A }), false)).toBe(false)
    // A member still downloading has no sha256 yet: its ETag decides.
    expect(version.matches(ticket({ complete: false, digest: B }), true)).toBe(true)
  })

  it('a weak ETag must agree with the Last-Modified; a strong one decides alone', () => {
    const weak = new ContentVersion(true, { etag: 'W/"10"', lastModified: 'Mon' })
    expect(weak.matches(ticket({ complete: false, digest: A, etag: 'W/"10"', lastModified: 'Mon' }), true)).toBe(true)
    expect(weak.matches(ticket({ complete: false, digest: A, etag: 'W/"10"', lastModified: 'Tue' }), true)).toBe(false)
    const strong = new ContentVersion(true, { etag: '"s"', lastModified: 'Mon' })
    expect(strong.matches(ticket({ complete: false, digest: A, etag: '"s"', lastModified: 'Tue' }), true)).toBe(true)
    expect(strong.matches(ticket({ complete: false, digest: A, etag: '"t"', lastModified: 'Mon' }), true)).toBe(false)
  })

  it('a digest name reads every holder: the digest checks the bytes', () => {
    const version = new ContentVersion(false)
    expect(version.matches(ticket({ complete: true, digest: A }), true)).toBe(true)
    expect(version.matches(ticket({ complete: true, digest: B }), true)).toBe(true)
  })
})
