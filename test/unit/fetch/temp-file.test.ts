import { describe, expect, it } from 'vitest'
import { resumes } from '../../../node/fetch/temp-file.ts'
import type { PartialEntry } from '../../../node/store/index-db.ts'

function entry (validator: PartialEntry['validator'], expectedDigest: string | null = null): PartialEntry {
  return { url: 'http://x/f', size: 10, pieceSize: 5, bitmap: 'AQ==', contentType: null, headers: {}, validator, etag: '"e"', expectedDigest, startedAt: 1, updatedAt: 1 }
}

describe('whether a progress entry belongs to the file the upstream serves now', () => {
  it('same size and ETag, or Last-Modified without ETags: yes; another one or another size: no', () => {
    expect(resumes(entry({ etag: '"a"', lastModified: null }), 10, { etag: '"a"', lastModified: null })).toBe(true)
    expect(resumes(entry({ etag: '"a"', lastModified: null }), 10, { etag: '"b"', lastModified: null })).toBe(false)
    expect(resumes(entry({ etag: '"a"', lastModified: null }), 11, { etag: '"a"', lastModified: null })).toBe(false)
    expect(resumes(entry({ etag: null, lastModified: 'Mon' }), 10, { etag: null, lastModified: 'Mon' })).toBe(true)
    expect(resumes(entry({ etag: null, lastModified: 'Mon' }), 10, { etag: null, lastModified: 'Tue' })).toBe(false)
  })

  it('without any validator only a digest can tell: no resume unless one is expected', () => {
    expect(resumes(entry({ etag: null, lastModified: null }), 10, { etag: null, lastModified: null })).toBe(false)
    expect(resumes(entry({ etag: null, lastModified: null }, 'ab'.repeat(32)), 10, { etag: null, lastModified: null })).toBe(true)
  })

  it('a weak ETag alone tells nothing (it may stay while the bytes change); beside a Last-Modified both must agree', () => {
    expect(resumes(entry({ etag: 'W/"10"', lastModified: null }), 10, { etag: 'W/"10"', lastModified: null })).toBe(false)
    expect(resumes(entry({ etag: 'W/"10"', lastModified: null }, 'ab'.repeat(32)), 10, { etag: 'W/"10"', lastModified: null })).toBe(true)
    expect(resumes(entry({ etag: 'W/"10"', lastModified: 'Mon' }), 10, { etag: 'W/"10"', lastModified: 'Mon' })).toBe(true)
    expect(resumes(entry({ etag: 'W/"10"', lastModified: 'Mon' }), 10, { etag: 'W/"10"', lastModified: 'Tue' })).toBe(false)
    expect(resumes(entry({ etag: 'W/"10"', lastModified: 'Mon' }), 10, { etag: 'W/"11"', lastModified: 'Mon' })).toBe(false)
  })
})
