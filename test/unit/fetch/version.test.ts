import { describe, expect, it } from 'vitest'
import { sameVersion, unversioned } from '../../../node/fetch/version.ts'

describe('telling versions of a file apart by its validators', () => {
  it('a strong ETag decides alone; without one the Last-Modified decides', () => {
    expect(sameVersion({ etag: '"a"', 'last-modified': 'Tue' }, { etag: '"a"', lastModified: 'Mon' })).toBe(true)
    expect(sameVersion({ etag: '"b"' }, { etag: '"a"', lastModified: null })).toBe(false)
    expect(sameVersion({ 'last-modified': 'Tue' }, { etag: null, lastModified: 'Mon' })).toBe(false)
    expect(unversioned({ etag: '"a"', lastModified: null })).toBe(false)
    expect(unversioned({ etag: null, lastModified: 'Mon' })).toBe(false)
    expect(unversioned({ etag: null, lastModified: null })).toBe(true)
    // A known digest decides.
    expect(unversioned(undefined)).toBe(false)
  })

  it('a weak ETag (equivalent, not the same bytes) needs the Last-Modified to agree, and alone leaves the file unversioned', () => {
    expect(sameVersion({ etag: 'W/"10"', 'last-modified': 'Mon' }, { etag: 'W/"10"', lastModified: 'Mon' })).toBe(true)
    expect(sameVersion({ etag: 'W/"10"', 'last-modified': 'Tue' }, { etag: 'W/"10"', lastModified: 'Mon' })).toBe(false)
    expect(sameVersion({ etag: 'W/"11"', 'last-modified': 'Mon' }, { etag: 'W/"10"', lastModified: 'Mon' })).toBe(false)
    expect(unversioned({ etag: 'W/"10"', lastModified: null })).toBe(true)
    expect(unversioned({ etag: 'W/"10"', lastModified: 'Mon' })).toBe(false)
  })
})
