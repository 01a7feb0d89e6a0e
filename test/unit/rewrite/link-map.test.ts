import { describe, expect, it } from 'vitest'
import { createLinkRewriter, linkMappings } from '../../../node/rewrite/link-map.ts'
import { compileRule } from '../../../node/router/compile.ts'
import { makeRule } from '../../helpers/config.ts'

const rules = [
  makeRule({ name: 'npm', path_prefix: '/npm/', strip_prefix: true, upstream: 'https://registry.npmjs.org' }),
  makeRule({ name: 'conda-forge', path_prefix: '/conda-forge/', strip_prefix: true, upstream: 'https://conda.anaconda.org/conda-forge' }),
  makeRule({ name: 'files', path_prefix: '/packages/', upstream: 'https://files.pythonhosted.org' }),
  makeRule({ name: 'simple', path_prefix: '/simple/', upstream: 'https://pypi.org', content_rewrite: { content_types: [], targets: ['https://files.pythonhosted.org'] } }),
  makeRule({ name: 'conda-json', path_prefix: '/cj/', strip_prefix: true, upstream: 'https://api.example', content_rewrite: { content_types: [], targets: ['https://conda.anaconda.org'] } }),
  makeRule({ name: 'npm-alt', path_prefix: '/mirror-npm', strip_prefix: true, upstream: 'https://registry.npmjs.org' })
].map(compileRule)
const byName = (name: string): NonNullable<(typeof rules)[number]> => {
  const r = rules.find((c) => c.rule.name === name)
  if (r === undefined) throw new Error(name)
  return r
}
const BASE = 'http://127.0.0.1:8081'

describe('linkMappings', () => {
  it('maps the rule upstream to its stripped mount prefix', () => {
    expect(linkMappings(rules, byName('npm'), [])).toContainEqual({ from: 'https://registry.npmjs.org', mirrorPath: '/npm' })
  })

  it('lets the current rule win when two rules mount the same upstream', () => {
    expect(linkMappings(rules, byName('npm-alt'), [])).toContainEqual({ from: 'https://registry.npmjs.org', mirrorPath: '/mirror-npm' })
  })

  it('maps a target to the rule that serves it, and an origin to the mounts below it, longest first', () => {
    expect(linkMappings(rules, byName('simple'), [])).toEqual([
      { from: 'https://files.pythonhosted.org', mirrorPath: '' },
      { from: 'https://pypi.org', mirrorPath: '' }
    ])
    const cj = linkMappings(rules, byName('conda-json'), [])
    expect(cj).toEqual([
      { from: 'https://conda.anaconda.org/conda-forge', mirrorPath: '/conda-forge' },
      { from: 'https://conda.anaconda.org', mirrorPath: '' },
      { from: 'https://api.example', mirrorPath: '/cj' }
    ])
  })

  it('maps global targets no rule serves to the mirror root', () => {
    expect(linkMappings(rules, byName('npm'), ['https://cdn.example:8443/'])).toContainEqual({ from: 'https://cdn.example:8443', mirrorPath: '' })
  })
})

describe('createLinkRewriter', () => {
  const cj = createLinkRewriter(linkMappings(rules, byName('conda-json'), []))
  const npm = createLinkRewriter(linkMappings(rules, byName('npm'), []))

  it('rewrites only whole origins or path segments', () => {
    const text = [
      'https://conda.anaconda.org/conda-forge/noarch/x.conda',
      'https://conda.anaconda.org/conda-forge2/x',
      'https://conda.anaconda.org/bioconda/x',
      'https://conda.anaconda.org.evil.example/x',
      'https://conda.anaconda.org:444/x',
      '"https://api.example"',
      'https://api.example?q=1'
    ].join('\n')
    expect(cj.rewriteText(text, BASE).split('\n')).toEqual([
      `${BASE}/conda-forge/noarch/x.conda`,
      `${BASE}/conda-forge2/x`,
      `${BASE}/bioconda/x`,
      'https://conda.anaconda.org.evil.example/x',
      'https://conda.anaconda.org:444/x',
      `"${BASE}/cj"`,
      `${BASE}/cj?q=1`
    ])
  })

  it('rewrites JSON with escaped slashes, keeping them escaped', () => {
    expect(npm.rewriteText('{"t":"https:\\/\\/registry.npmjs.org\\/a\\/-\\/a.tgz"}', BASE))
      .toBe('{"t":"http:\\/\\/127.0.0.1:8081\\/npm\\/a\\/-\\/a.tgz"}')
  })

  it('maps single URLs, resolving relative ones against the upstream request', () => {
    const upstream = new URL('https://registry.npmjs.org/react?x=1')
    expect(npm.rewriteUrl('/react/-/react-1.tgz', upstream, BASE)).toBe(`${BASE}/npm/react/-/react-1.tgz`)
    expect(npm.rewriteUrl('https://registry.npmjs.org', upstream, BASE)).toBe(`${BASE}/npm/`)
    expect(npm.rewriteUrl('https://cdn.example/x', upstream, BASE)).toBeNull()
    expect(npm.rewriteUrl('http://[bad', upstream, BASE)).toBeNull()
  })

  it('rewrites each mapped reference of a Link header', () => {
    const upstream = new URL('https://registry.npmjs.org/-/v1/search')
    expect(npm.rewriteLinkHeader('</-/v1/search?from=20>; rel="next", <https://other.example/x>; rel="alternate"', upstream, BASE))
      .toBe(`<${BASE}/npm/-/v1/search?from=20>; rel="next", <https://other.example/x>; rel="alternate"`)
  })

  it('leaves text alone with no mappings', () => {
    expect(createLinkRewriter([]).rewriteText('https://a.example', BASE)).toBe('https://a.example')
  })
})

describe('textRuns', () => {
  it('rewrites a text that arrives in pieces exactly as the whole, wherever it is cut', () => {
    const rewriter = createLinkRewriter(linkMappings(rules, byName('conda-json'), []))
    const text = 'see https://conda.anaconda.org/conda-forge/x and https:\\/\\/conda.anaconda.org\\/y, ' +
      'not https://conda.anaconda.org.evil/z nor https://conda.anaconda.org/conda-forge2/w; https://api.example'
    const whole = rewriter.rewriteText(text, BASE)
    expect(whole).toContain(`${BASE}/conda-forge/x`)
    for (let size = 1; size <= text.length; size++) {
      const runs = rewriter.textRuns(BASE)
      let out = ''
      for (let at = 0; at < text.length; at += size) out += runs.push(text.slice(at, at + size))
      expect(out + runs.end()).toBe(whole)
    }
    const two = rewriter.textRuns(BASE)
    expect(two.push(text.slice(0, 40)) + two.push(text.slice(40)) + two.end()).toBe(whole)
  })
})
