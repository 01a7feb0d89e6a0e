import { describe, expect, it } from 'vitest'
import { answerBlobRequest, parseRange, rangeStartHint } from '../../../node/http/blob-response.ts'
import type { BlobMeta } from '../../../node/fetch/response-meta.ts'

const meta: BlobMeta = {
  size: 1000,
  etag: '"abc"',
  lastModified: 'Wed, 21 Oct 2015 07:28:00 GMT',
  contentType: 'application/x-thing',
  headers: { 'x-linked-etag': '"zzz"', 'content-length': '5' },
  validator: { etag: '"abc"', lastModified: null }
}

describe('parseRange', () => {
  const cases: Array<[string | undefined, ReturnType<typeof parseRange>]> = [
    [undefined, null],
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=900-', { start: 900, end: 999 }],
    ['bytes=-100', { start: 900, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=990-2000', { start: 990, end: 999 }],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=5-1', null],
    ['bytes=0-1,5-6', null],
    ['items=0-1', null]
  ]
  for (const [h, want] of cases) it(String(h), () => { expect(parseRange(h, 1000)).toEqual(want) })
  it('hint', () => {
    expect(rangeStartHint('bytes=500-')).toBe(500)
    expect(rangeStartHint('bytes=-5')).toBe(0)
  })
})

describe('answerBlobRequest', () => {
  it('200 with length, validators, replayed headers', () => {
    const a = answerBlobRequest(meta, {})
    expect(a.status).toBe(200)
    expect(a.headers).toMatchObject({ 'content-length': '1000', etag: '"abc"', 'accept-ranges': 'bytes', 'x-linked-etag': '"zzz"', 'content-type': 'application/x-thing' })
  })
  it('206 and 416', () => {
    const a = answerBlobRequest(meta, { range: 'bytes=10-19' })
    expect(a).toMatchObject({ status: 206, start: 10, end: 20 })
    expect(a.headers['content-range']).toBe('bytes 10-19/1000')
    expect(a.headers['content-length']).toBe('10')
    const b = answerBlobRequest(meta, { range: 'bytes=2000-' })
    expect(b.status).toBe(416)
    expect(b.headers['content-range']).toBe('bytes */1000')
  })
  it('If-Range: matching ETag or date keeps the range, anything else gives 200', () => {
    expect(answerBlobRequest(meta, { range: 'bytes=0-1', 'if-range': '"abc"' }).status).toBe(206)
    expect(answerBlobRequest(meta, { range: 'bytes=0-1', 'if-range': meta.lastModified ?? '' }).status).toBe(206)
    expect(answerBlobRequest(meta, { range: 'bytes=0-1', 'if-range': '"old"' }).status).toBe(200)
    expect(answerBlobRequest(meta, { range: 'bytes=0-1', 'if-range': 'W/"abc"' }).status).toBe(200)
  })
  it('If-None-Match and If-Modified-Since give 304', () => {
    expect(answerBlobRequest(meta, { 'if-none-match': 'W/"abc", "x"' }).status).toBe(304)
    expect(answerBlobRequest(meta, { 'if-none-match': '"x"' }).status).toBe(200)
    expect(answerBlobRequest(meta, { 'if-modified-since': 'Thu, 22 Oct 2015 07:28:00 GMT' }).status).toBe(304)
    expect(answerBlobRequest(meta, { 'if-modified-since': 'Tue, 20 Oct 2015 07:28:00 GMT' }).status).toBe(200)
  })
  it('If-Match (strong) and If-Unmodified-Since give 412 when they fail, and are checked first', () => {
    expect(answerBlobRequest(meta, { 'if-match': '"nope"' }).status).toBe(412)
    expect(answerBlobRequest(meta, { 'if-match': 'W/"abc"' }).status).toBe(412)
    expect(answerBlobRequest(meta, { 'if-match': '"x", "abc"' }).status).toBe(200)
    expect(answerBlobRequest(meta, { 'if-match': '*', range: 'bytes=0-9' }).status).toBe(206)
    expect(answerBlobRequest(meta, { 'if-match': '"nope"', 'if-none-match': '"abc"' }).status).toBe(412)
    expect(answerBlobRequest(meta, { 'if-unmodified-since': 'Tue, 20 Oct 2015 07:28:00 GMT' }).status).toBe(412)
    expect(answerBlobRequest(meta, { 'if-unmodified-since': 'Wed, 21 Oct 2015 07:28:00 GMT' }).status).toBe(200)
    // If-Match decides alone when both are sent.
    expect(answerBlobRequest(meta, { 'if-match': '"abc"', 'if-unmodified-since': 'Tue, 20 Oct 2015 07:28:00 GMT' }).status).toBe(200)
  })

  it('unknown size streams the whole body', () => {
    expect(answerBlobRequest({ ...meta, size: null }, { range: 'bytes=0-1' })).toMatchObject({ status: 200, start: 0, end: null })
  })
})
