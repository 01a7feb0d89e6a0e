import { createHash } from 'node:crypto'

/** Deterministic pseudo-random bytes (xorshift32), so a registry process and the test agree on a blob. */
export function blobData (size: number, seed: number): Buffer {
  const out = Buffer.alloc(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    if (i + 4 <= size) out.writeUInt32LE(x, i)
    else for (let k = 0; i + k < size; k++) out[i + k] = (x >>> (8 * k)) & 0xff
  }
  return out
}

export function sha256Hex (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
