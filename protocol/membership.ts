import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * Membership proofs. With a cluster key, each side proves it holds the key by an HMAC over a transcript
 * that names the cluster, both nonces, the prover's role and both peer ids. The peer ids are the ones the
 * Noise handshake authenticated, so a proof cannot be relayed to a third node, and fresh nonces stop
 * replays. Without a key the same exchange runs with a key derived from the cluster name: it keeps
 * clusters of other names apart, it is not a secret.
 */

export const CLUSTER_KEY_BYTES = 32
const KEY_FILE_HEADER = 'aimirror-cluster-key v1'

export type Role = 'initiator' | 'responder'

export interface Transcript {
  cluster: string
  initiatorNonce: Uint8Array
  responderNonce: Uint8Array
  initiator: string
  responder: string
}

/** The secret proofs are made with: the cluster key, or the name-derived key of an open cluster. */
export function membershipSecret (cluster: string, key: Uint8Array | null): Uint8Array {
  if (key !== null) return key
  return createHash('sha256').update(`aimirror open cluster\0${cluster}`).digest()
}

export function newNonce (): Uint8Array {
  return randomBytes(32)
}

export function proofFor (secret: Uint8Array, role: Role, t: Transcript): Uint8Array {
  const h = createHmac('sha256', secret)
  for (const part of ['aimirror-member-v1', role, t.cluster, t.initiator, t.responder]) h.update(part).update('\0')
  h.update(t.initiatorNonce).update(t.responderNonce)
  return h.digest()
}

export function checkProof (secret: Uint8Array, role: Role, t: Transcript, proof: Uint8Array): boolean {
  const expected = proofFor(secret, role, t)
  return proof.length === expected.length && timingSafeEqual(proof, expected)
}

/** Text of a key file written by `aimirror keygen`. */
export function formatClusterKey (key: Uint8Array = randomBytes(CLUSTER_KEY_BYTES)): string {
  return `${KEY_FILE_HEADER}\n${Buffer.from(key).toString('base64')}\n`
}

/** The key in a key file's text; throws TypeError with the reason when it is not one. */
export function parseClusterKey (text: string): Uint8Array {
  const lines = text.split(/\r?\n/).map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
  if (lines[0] !== KEY_FILE_HEADER || lines.length !== 2) throw new TypeError(`expected "${KEY_FILE_HEADER}" and one base64 line`)
  const key = Buffer.from(lines[1] as string, 'base64')
  if (key.length !== CLUSTER_KEY_BYTES || key.toString('base64') !== lines[1]) throw new TypeError(`expected ${CLUSTER_KEY_BYTES} bytes of base64`)
  return key
}
