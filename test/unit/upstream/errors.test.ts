import { errors as undiciErrors } from 'undici'
import { describe, expect, it } from 'vitest'
import { AimirrorError, BadRequestError } from '../../../node/errors.ts'
import { toUpstreamError } from '../../../node/upstream/errors.ts'

const withCode = (code: string): Error => Object.assign(new Error(code), { code })
const codeOf = (err: unknown): string | undefined => (err instanceof AimirrorError ? err.code : undefined)

describe('toUpstreamError', () => {
  it.each([
    [withCode('ECONNREFUSED'), 'ERR_UPSTREAM_UNREACHABLE'],
    [withCode('ENOTFOUND'), 'ERR_UPSTREAM_UNREACHABLE'],
    [withCode('EAI_AGAIN'), 'ERR_UPSTREAM_UNREACHABLE'],
    [withCode('ECONNRESET'), 'ERR_UPSTREAM_UNREACHABLE'],
    [new undiciErrors.SocketError('other side closed'), 'ERR_UPSTREAM_UNREACHABLE'],
    [new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]), 'ERR_UPSTREAM_UNREACHABLE'],
    [new undiciErrors.ConnectTimeoutError(), 'ERR_UPSTREAM_TIMEOUT'],
    [new undiciErrors.HeadersTimeoutError(), 'ERR_UPSTREAM_TIMEOUT'],
    [new undiciErrors.BodyTimeoutError(), 'ERR_UPSTREAM_TIMEOUT'],
    [withCode('ETIMEDOUT'), 'ERR_UPSTREAM_TIMEOUT'],
    [new DOMException('t', 'TimeoutError'), 'ERR_UPSTREAM_TIMEOUT'],
    [new undiciErrors.RequestAbortedError(), 'ERR_ABORTED'],
    [new DOMException('a', 'AbortError'), 'ERR_ABORTED'],
    [new undiciErrors.ResponseContentLengthMismatchError(), 'ERR_UPSTREAM_PROTOCOL'],
    [withCode('HPE_INVALID_CONSTANT'), 'ERR_UPSTREAM_PROTOCOL'],
    // A blackhole route (EINVAL) or a firewall's OUTPUT rule (EPERM) refuses the connect on this machine.
    [Object.assign(withCode('EINVAL'), { syscall: 'connect' }), 'ERR_UPSTREAM_UNREACHABLE'],
    [new AggregateError([Object.assign(withCode('EPERM'), { syscall: 'connect' })]), 'ERR_UPSTREAM_UNREACHABLE']
  ])('%s → %s', (err, code) => {
    const mapped = toUpstreamError(err, 'https://up.example')
    expect(codeOf(mapped)).toBe(code)
    expect((mapped as Error).cause).toBe(err)
  })

  it('names the upstream origin in the detail', () => {
    const mapped = toUpstreamError(withCode('ECONNREFUSED'), 'https://up.example') as AimirrorError
    expect(mapped.detail).toEqual({ upstream: 'https://up.example' })
  })

  it('keeps catalogue errors and unknown errors as they are', () => {
    const own = new BadRequestError()
    expect(toUpstreamError(own)).toBe(own)
    const bug = new TypeError('x is not a function')
    expect(toUpstreamError(bug)).toBe(bug)
    const elsewhere = Object.assign(withCode('EINVAL'), { syscall: 'write' })
    expect(toUpstreamError(elsewhere)).toBe(elsewhere)
  })
})
