import { describe, expect, it } from 'vitest'
import { NEEDS, tooOld } from '../../../bin/node-version.js'

describe('the Node.js version check of bin/aimirror.js', () => {
  it.each([['20.20.2', true], ['22.14.9', true], ['22.15.0', false], ['23.1.0', false], ['24.21.0', false]])('%s too old: %s', (version, old) => {
    expect(tooOld(version)).toBe(old)
  })

  it('asks for what package.json promises', async () => {
    const pkg = (await import('../../../package.json', { with: { type: 'json' } })).default as { engines: { node: string } }
    expect(pkg.engines.node).toBe(`>=${NEEDS}`)
  })
})
