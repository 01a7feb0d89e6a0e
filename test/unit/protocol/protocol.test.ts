import { createHash, createSecretKey } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { cidFromSha256, sha256FromCid } from '../../../protocol/cid.ts'
import { WireError } from '../../../protocol/errors.ts'
import { LIMITS } from '../../../protocol/ids.ts'
import { controlAnswer, controlRequest, decodeMessage, encodeMessage, expectAnswer } from '../../../protocol/messages.ts'
import { checkProof, formatClusterKey, membershipSecret, newNonce, parseClusterKey, proofFor } from '../../../protocol/membership.ts'
import { alignedSpan, PIECE_HASH_UNIT, PieceHasher, pieceHashCount } from '../../../protocol/pieces.ts'
import { MAX_URL_NAME, nameId, nameOfKey, wireKey } from '../../../protocol/names.ts'
import { issueTicket, normaliseIp, readTicket } from '../../../protocol/ticket.ts'

const HEX = createHash('sha256').update('x').digest('hex')

function wireCode (fn: () => unknown): string {
  try { fn() } catch (err) { if (err instanceof WireError) return err.code; throw err }
  throw new Error('expected a WireError')
}

describe('cid', () => {
  it('round-trips a sha256 digest as CID v1 raw', () => {
    const cid = cidFromSha256(HEX)
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x55)
    expect(cid.multihash.code).toBe(0x12)
    expect(sha256FromCid(cid)).toBe(HEX)
  })
  it('refuses what is not a sha256 hex digest', () => {
    expect(() => cidFromSha256('ABC')).toThrow(TypeError)
  })
})

describe('messages', () => {
  it('decodes valid requests and answers', () => {
    expect(decodeMessage(controlRequest, encodeMessage({ t: 'have', key: `sha256:${HEX}` }))).toEqual({ t: 'have', key: `sha256:${HEX}` })
    expect(decodeMessage(controlRequest, encodeMessage({ t: 'corrupt', key: `sha256:${HEX}` }))).toEqual({ t: 'corrupt', key: `sha256:${HEX}` })
    expect(decodeMessage(controlRequest, encodeMessage({ t: 'ticket', key: 'url:https://h.example/a?b=1' }))).toEqual({ t: 'ticket', key: 'url:https://h.example/a?b=1' })
    for (const key of [`sha512:${'ab'.repeat(64)}`, `git-sha1:${'cd'.repeat(20)}`]) expect(decodeMessage(controlRequest, encodeMessage({ t: 'have', key }))).toEqual({ t: 'have', key })
    const have = { t: 'have', state: 'partial', size: 10, pieceSize: 4, bitmap: 'AQ==', active: [[4, 8]] }
    expect(decodeMessage(controlAnswer, encodeMessage(have))).toEqual(have)
    expect(wireCode(() => decodeMessage(controlAnswer, encodeMessage({ ...have, active: [[4, -1]] })))).toBe('BAD_MESSAGE')
    expect(wireCode(() => decodeMessage(controlRequest, encodeMessage({ t: 'corrupt', key: 'sha256:zz' })))).toBe('BAD_MESSAGE')
    const err = decodeMessage(controlAnswer, encodeMessage({ t: 'error', code: 'NOT_MEMBER', message: 'no' }))
    expect(wireCode(() => expectAnswer(err, 'have'))).toBe('NOT_MEMBER')
  })
  it.each([
    ['not json', Buffer.from('{nope')],
    ['unknown type', encodeMessage({ t: 'delete', key: `sha256:${HEX}` })],
    ['extra field', encodeMessage({ t: 'stats', also: 1 })],
    ['bad key', encodeMessage({ t: 'have', key: 'md5:00' })],
    ['sha1 key (too weak to name content)', encodeMessage({ t: 'have', key: `sha1:${'ab'.repeat(20)}` })],
    ['URL name of another scheme', encodeMessage({ t: 'have', key: 'url:ftp://x/' })],
    ['URL name with a space', encodeMessage({ t: 'ticket', key: 'url:http://x/a b' })],
    ['URL name too long', encodeMessage({ t: 'have', key: `url:http://x/${'a'.repeat(MAX_URL_NAME)}` })],
    ['too large', Buffer.alloc(LIMITS.maxMessageBytes + 1, 0x20)]
  ])('%s is BAD_MESSAGE', (_name, bytes) => {
    expect(wireCode(() => decodeMessage(controlRequest, bytes))).toBe('BAD_MESSAGE')
  })
})

describe('blob names', () => {
  it('reads stats with fields it does not know (a newer node\'s), without them', () => {
    const stats = { peer_id: 'p', cluster: 'c', uptime_s: 1, cache: { size_bytes: 1, blobs: 1, max_bytes: 2 }, hits: 0, misses: 0, bytes_from_cache: 0, bytes_from_peers: 0, bytes_from_upstream: 0, bytes_to_peers: 0, active_downloads: 0, peers: 1 }
    const answer = decodeMessage(controlAnswer, encodeMessage({ t: 'stats', stats: { ...stats, host: 'gpu-1', from_the_future: [1, 2] } }))
    expect(answer).toEqual({ t: 'stats', stats: { ...stats, host: 'gpu-1' } })
    expect(wireCode(() => decodeMessage(controlAnswer, encodeMessage({ t: 'stats', stats: { ...stats, hits: -1 } })))).toBe('BAD_MESSAGE')
  })

  it('a digest is its own id and travels as sha256:<hex>', () => {
    expect(nameId(HEX)).toBe(HEX)
    expect(wireKey(HEX)).toBe(`sha256:${HEX}`)
    expect(nameOfKey(wireKey(HEX))).toBe(HEX)
  })
  it('a URL name travels as itself, with an id of 64 hex digits that is no digest of it', () => {
    const url = 'url:https://h.example/file.bin'
    expect(wireKey(url)).toBe(url)
    expect(nameOfKey(url)).toBe(url)
    expect(nameId(url)).toMatch(/^[0-9a-f]{64}$/)
    expect(nameId(url)).toBe(nameId(url))
    expect(nameId(url)).not.toBe(createHash('sha256').update(url).digest('hex'))
    expect(nameId(url)).not.toBe(nameId('url:https://h.example/other.bin'))
  })
})

describe('membership proofs', () => {
  const t = { cluster: 'c', initiatorNonce: newNonce(), responderNonce: newNonce(), initiator: 'A', responder: 'B' }
  const key = parseClusterKey(formatClusterKey())
  it('a proof checks with the same key, role and transcript only', () => {
    const secret = membershipSecret('c', key)
    const proof = proofFor(secret, 'initiator', t)
    expect(checkProof(secret, 'initiator', t, proof)).toBe(true)
    expect(checkProof(secret, 'responder', t, proof)).toBe(false)
    expect(checkProof(secret, 'initiator', { ...t, responder: 'C' }, proof)).toBe(false)
    expect(checkProof(membershipSecret('c', parseClusterKey(formatClusterKey())), 'initiator', t, proof)).toBe(false)
    expect(checkProof(membershipSecret('c', null), 'initiator', t, proof)).toBe(false)
  })
  it('open clusters of different names do not accept each other', () => {
    const proof = proofFor(membershipSecret('a', null), 'responder', t)
    expect(checkProof(membershipSecret('b', null), 'responder', t, proof)).toBe(false)
  })
  it('key files are checked', () => {
    expect(() => parseClusterKey('hello')).toThrow(TypeError)
    expect(() => parseClusterKey('aimirror-cluster-key v1\nAAAA\n')).toThrow(TypeError)
  })
})

describe('tickets', () => {
  const secret = createSecretKey(Buffer.alloc(32, 7))
  const claims = { digest: HEX, peer: 'P', ip: '10.0.0.2', exp: 2000 }
  it('a genuine unexpired ticket reads back', () => {
    expect(readTicket(secret, issueTicket(secret, claims), 1000)).toEqual(claims)
  })
  it('expired, forged or altered tickets are refused', () => {
    const t = issueTicket(secret, claims)
    expect(readTicket(secret, t, 2000)).toBe(null)
    expect(readTicket(createSecretKey(Buffer.alloc(32, 8)), t, 1000)).toBe(null)
    const [v, , mac] = t.split('.')
    const other = Buffer.from(JSON.stringify({ d: HEX, p: 'P', i: '10.0.0.3', e: 2000 })).toString('base64url')
    expect(readTicket(secret, `${v}.${other}.${mac}`, 1000)).toBe(null)
  })
  it('mapped IPv4 addresses are the same address', () => {
    expect(normaliseIp('::FFFF:10.0.0.1')).toBe('10.0.0.1')
  })
})

describe('piece hashes', () => {
  it('one entry per MiB, whatever the chunking', () => {
    const data = Buffer.alloc(PIECE_HASH_UNIT * 2 + 5, 1)
    const a = new PieceHasher()
    a.update(data)
    const b = new PieceHasher()
    for (let i = 0; i < data.length; i += 777) b.update(data.subarray(i, i + 777))
    expect(a.digest().equals(b.digest())).toBe(true)
    expect(a.digest().length).toBe(3 * 32)
    expect(pieceHashCount(data.length)).toBe(3)
  })
  it('takes a known unit\'s hash instead of hashing it, only for units not yet begun', () => {
    const data = Buffer.alloc(PIECE_HASH_UNIT * 3 + 5)
    for (let i = 0; i < data.length; i++) data[i] = i % 251
    const plain = new PieceHasher()
    plain.update(data)
    const list = plain.digest()
    const marker = Buffer.alloc(32, 0xab)
    const h = new PieceHasher()
    h.known(1, marker)
    h.update(data.subarray(0, PIECE_HASH_UNIT + 10))
    // Unit 2 is known only after its first bytes came: it is hashed all the same.
    h.update(data.subarray(PIECE_HASH_UNIT + 10, 2 * PIECE_HASH_UNIT + 1))
    h.known(2, marker)
    h.known(3, list.subarray(96, 128))
    h.update(data.subarray(2 * PIECE_HASH_UNIT + 1))
    const got = h.digest()
    expect(got.subarray(0, 32).equals(list.subarray(0, 32))).toBe(true)
    expect(got.subarray(32, 64).equals(marker)).toBe(true)
    expect(got.subarray(64).equals(list.subarray(64))).toBe(true)
  })
  it('a blob of one slice lists its own digest', () => {
    const h = new PieceHasher()
    h.update(Buffer.from('x'))
    expect(h.digest().toString('hex')).toBe(HEX)
  })
  it('aligned spans cover the asked bytes', () => {
    expect(alignedSpan(10, PIECE_HASH_UNIT + 1, PIECE_HASH_UNIT * 3)).toEqual({ start: 0, end: PIECE_HASH_UNIT * 2 })
    expect(alignedSpan(PIECE_HASH_UNIT, PIECE_HASH_UNIT * 3, PIECE_HASH_UNIT * 2 + 3)).toEqual({ start: PIECE_HASH_UNIT, end: PIECE_HASH_UNIT * 2 + 3 })
  })
})
