import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import * as errors from '../../../node/errors.ts'

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')

describe('error catalogue', () => {
  it('documents every code', () => {
    for (const code of errors.ERROR_CODES) expect(doc, code).toContain(`\`${code}\``)
  })

  it('lists every exported error class code in ERROR_CODES', () => {
    const classes = Object.values(errors).filter((v): v is typeof errors.AimirrorError & { code: string } =>
      typeof v === 'function' && 'code' in v && typeof (v as { code: unknown }).code === 'string')
    expect(classes.length).toBeGreaterThan(5)
    for (const cls of classes) expect(errors.ERROR_CODES).toContain(cls.code)
    expect(new Set(errors.ERROR_CODES).size).toBe(errors.ERROR_CODES.length)
  })

  it('gives each error its code, name and cause', () => {
    const cause = new Error('root')
    const err = new errors.UpstreamTimeoutError(undefined, { cause })
    expect(err.code).toBe('ERR_UPSTREAM_TIMEOUT')
    expect(err.name).toBe('UpstreamTimeoutError')
    expect(err.cause).toBe(cause)
    expect(err).toBeInstanceOf(errors.AimirrorError)
    expect(errors.isAimirrorError(err)).toBe(true)
    expect(errors.isAimirrorError(new Error('x'))).toBe(false)
  })
})
