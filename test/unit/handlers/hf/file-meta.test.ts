import { describe, expect, it } from 'vitest'
import { fileMetaFromHeaders, hubHeaders, isFileMeta, mirrorEtag, normalizeEtag } from '../../../../node/handlers/hf/file-meta.ts'
import { AccessMemory, credentialScope } from '../../../../node/handlers/hf/access.ts'

const C = '0123456789abcdef0123456789abcdef01234567'
const SHA = 'f0f6fc1e4d9f80b68d4656d5f321721dafc03a78316a36057ad5d9dbab3d3cec'

describe('hf file metadata', () => {
  it('reads an LFS redirect: size from X-Linked-Size, identity from X-Linked-Etag', () => {
    const m = fileMetaFromHeaders({ 'x-repo-commit': C, etag: `"${SHA}"`, 'x-linked-etag': `"${SHA}"`, 'x-linked-size': '307200', 'content-length': '0', 'content-type': 'text/plain' }, true, 'public', 5)
    expect(m).toEqual({ commit: C, etag: `"${SHA}"`, linkedEtag: `"${SHA}"`, sha256: SHA, size: 307200, contentType: 'application/octet-stream', contentDisposition: null, scope: 'public', learnedAt: 5 })
    if (typeof m !== 'string') {
      expect(mirrorEtag(m)).toBe(`"${SHA}"`)
      expect(hubHeaders(m)).toEqual({ 'x-repo-commit': C, 'x-linked-size': '307200', 'x-linked-etag': `"${SHA}"` })
      expect(isFileMeta(JSON.parse(JSON.stringify(m)))).toBe(true)
    }
  })

  it('reads a git file: size from Content-Length, no sha256', () => {
    const m = fileMetaFromHeaders({ 'x-repo-commit': C, etag: 'W/"abc"', 'content-length': '8', 'content-type': 'text/plain' }, false, 'auth')
    expect(typeof m).toBe('object')
    if (typeof m !== 'string') {
      expect(m.sha256).toBeNull()
      expect(m.size).toBe(8)
      expect(m.contentType).toBe('text/plain')
      expect(mirrorEtag(m)).toBe('"abc"')
    }
  })

  it('names what is missing', () => {
    expect(fileMetaFromHeaders({ etag: '"a"', 'content-length': '1' }, false, 'public')).toBe('no-commit')
    expect(fileMetaFromHeaders({ 'x-repo-commit': C, 'content-length': '1' }, false, 'public')).toBe('no-etag')
    expect(fileMetaFromHeaders({ 'x-repo-commit': C, etag: '"a"', 'content-length': '1' }, true, 'public')).toBe('no-size')
  })

  it('normalises ETags like huggingface_hub', () => {
    expect(normalizeEtag('W/"abc"')).toBe('abc')
    expect(normalizeEtag('"abc"')).toBe('abc')
    expect(normalizeEtag('abc')).toBe('abc')
  })

  it('refuses malformed records', () => {
    expect(isFileMeta({ commit: 'main' })).toBe(false)
    expect(isFileMeta(null)).toBe(false)
  })
})

describe('hf access memory', () => {
  it('hashes credentials and remembers a yes per repository for a while', () => {
    let now = 1000
    const mem = new AccessMemory({ ttlMs: 100, now: () => now })
    const a = credentialScope('Bearer hf_a')
    const b = credentialScope('Bearer hf_b')
    expect(a).not.toContain('hf_a')
    expect(a).not.toBe(b)
    expect(credentialScope(undefined)).toBeNull()
    const repo = { type: 'model' as const, id: 'acme/gated' }
    expect(mem.allowed(a, repo)).toBe(false)
    mem.grant(a, repo)
    expect(mem.allowed(a, repo)).toBe(true)
    expect(mem.allowed(b, repo)).toBe(false)
    expect(mem.allowed(a, { type: 'dataset', id: 'acme/gated' })).toBe(false)
    expect(mem.allowed(null, repo)).toBe(false)
    now += 100
    expect(mem.allowed(a, repo)).toBe(false)
    mem.grant(a, repo)
    mem.revoke(a, repo)
    expect(mem.allowed(a, repo)).toBe(false)
  })
})
