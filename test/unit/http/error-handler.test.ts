import { describe, expect, it } from 'vitest'
import * as errors from '../../../node/errors.ts'
import { describeError, statusForCode } from '../../../node/http/error-handler.ts'

describe('describeError', () => {
  it.each([
    ['ERR_BAD_REQUEST', 400], ['ERR_NO_ROUTE', 404], ['ERR_METHOD_NOT_ALLOWED', 405], ['ERR_RANGE_NOT_SATISFIABLE', 416],
    ['ERR_UPSTREAM_UNREACHABLE', 502], ['ERR_UPSTREAM_PROTOCOL', 502], ['ERR_DIGEST_MISMATCH', 502], ['ERR_UPSTREAM_TIMEOUT', 504],
    ['ERR_OVERLOADED', 503], ['ERR_SHUTTING_DOWN', 503]
  ])('%s → %i', (code, status) => {
    expect(statusForCode(code)).toBe(status)
  })

  it('gives every catalogue code a status', () => {
    for (const code of errors.ERROR_CODES) expect(statusForCode(code), code).toBeGreaterThanOrEqual(400)
  })

  it('puts code, message and detail in the body', () => {
    const { status, body } = describeError(new errors.BadRequestError('bad', { detail: { reason: 'dot_segment' } }))
    expect(status).toBe(400)
    expect(body).toEqual({ error: 'ERR_BAD_REQUEST', message: 'bad', reason: 'dot_segment' })
  })

  it('maps raw upstream socket errors that surface from a stream', () => {
    expect(describeError(Object.assign(new Error('x'), { code: 'UND_ERR_BODY_TIMEOUT' })).status).toBe(504)
    expect(describeError(Object.assign(new Error('x'), { code: 'ECONNRESET' })).status).toBe(502)
  })

  it('keeps framework 4xx statuses and hides internals of anything else', () => {
    expect(describeError(Object.assign(new Error('too big'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' })).status).toBe(413)
    expect(describeError(new Error('/secret/path')).body).toEqual({ error: 'ERR_INTERNAL', message: 'Internal error' })
  })
})
