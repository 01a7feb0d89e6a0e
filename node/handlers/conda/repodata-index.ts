import type { Readable } from 'node:stream'
import * as zlib from 'node:zlib'
import type { RepodataCoding } from './paths.ts'

/**
 * Reads the package records of a repodata document as it streams (repodata of a large channel is
 * hundreds of MB: never parsed whole) and reports `filename → sha256` in batches. Package records are
 * flat objects (`"name-1.0-0.conda": { ..., "sha256": "...", ... }`), so a record is found by its key and
 * its braces.
 */

const RECORD = /"([^"\\/]+\.(?:conda|tar\.bz2))"\s*:\s*\{([^{}]*)\}/g
const SHA256 = /"sha256"\s*:\s*"([0-9a-fA-F]{64})"/
/** A single record is never this long; past it the unmatched text is trimmed. */
const MAX_CARRY = 1 << 20
const KEEP = 256 * 1024

export type RecordBatch = Array<readonly [string, string]>

export function decoderFor (coding: RepodataCoding): zlib.ZstdDecompress | null | undefined {
  if (coding === 'json') return null
  if (coding === 'zst' && typeof zlib.createZstdDecompress === 'function') return zlib.createZstdDecompress()
  return undefined
}

/** How much of a repodata document's start onHead gets. */
const HEAD_CHARS = 64 * 1024

/** Scans `body` (already decoded text stream), calling `onBatch` with up to `batchSize` records at a time. */
export async function scanRecords (body: Readable, onBatch: (batch: RecordBatch) => Promise<void>,
  options: { batchSize?: number, signal?: AbortSignal, onHead?: (head: string) => void } = {}): Promise<number> {
  const batchSize = options.batchSize ?? 5000
  let carry = ''
  let batch: RecordBatch = []
  let total = 0
  // The document's first bytes (its `info`, when it comes first), given to onHead before any batch.
  let head: string | null = options.onHead === undefined ? null : ''
  const giveHead = (): void => {
    if (head === null) return
    options.onHead?.(head)
    head = null
  }
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (options.signal?.aborted === true) throw options.signal.reason
    // latin1: one code unit per byte, so a multi-byte character split across chunks cannot break a match.
    const text = chunk.toString('latin1')
    if (head !== null) {
      head += text.slice(0, HEAD_CHARS - head.length)
      if (head.length >= HEAD_CHARS) giveHead()
    }
    carry += text
    RECORD.lastIndex = 0
    let consumed = 0
    for (let m = RECORD.exec(carry); m !== null; m = RECORD.exec(carry)) {
      const sha = SHA256.exec(m[2] as string)
      if (sha !== null) batch.push([Buffer.from(m[1] as string, 'latin1').toString('utf8'), (sha[1] as string).toLowerCase()])
      consumed = RECORD.lastIndex
    }
    carry = carry.slice(consumed)
    if (carry.length > MAX_CARRY) carry = carry.slice(-KEEP)
    if (batch.length >= batchSize) {
      giveHead()
      total += batch.length
      await onBatch(batch)
      batch = []
    }
  }
  giveHead()
  if (batch.length > 0) {
    total += batch.length
    await onBatch(batch)
  }
  return total
}
