import type { Hash } from 'node:crypto'
import { Readable } from 'node:stream'
import { DigestMismatchError } from '../errors.ts'
import { digestLabel } from './identity.ts'
import type { ExpectedDigest } from './identity.ts'
import { createDigest } from './ordered-hasher.ts'
import { passthroughChunks } from './passthrough-chunks.ts'
import type { PassthroughChunksInit } from './passthrough-chunks.ts'
import type { BlobChunks } from './blob-chunks.ts'
import { askRange, DEFAULT_OUTAGE_MS, DEFAULT_STALL_CAP_MS, dropHead, fillRange, RangeRetries, usableFirst } from './passthrough-range.ts'
import type { PassthroughVersion } from './passthrough-range.ts'
import { StallWatch } from './stall-watch.ts'
import { discardBody } from './upstream-source.ts'
import type { Source, SourceResponse } from './upstream-source.ts'
import type { ActiveDownload, BlobHandle } from './acquire-types.ts'
import type { BlobMeta } from './response-meta.ts'

/** A pass-through as /health lists it while it streams. */
export type PassingThrough = Omit<ActiveDownload, 'started_at'> & { startedAt: number }

export interface PassThroughInit {
  key: string
  url: string
  meta: BlobMeta
  source: Source
  /** The download's first response: only the caller that started it owns it; joiners open their own. */
  first: SourceResponse | null
  onBytes: (n: number) => void
  /** Lists a stream while it runs (for /health). */
  passing: Set<PassingThrough>
  /** Several connections at once (an upstream that takes Range requests); null: one. */
  parallel?: ParallelPassthrough | null
  /** The digest the blob must have: a stream of all of it holds its last bytes until they match. */
  expected?: ExpectedDigest | null
}

/** A handle on a file passed through uncached: each open streams from the upstream (see openPassthrough). */
export function passThroughHandle (init: PassThroughInit): BlobHandle {
  let firstLeft = init.first
  const parallel = init.parallel ?? null
  const version = { validator: init.meta.validator, size: init.meta.size }
  /** A stream starts: it takes the first response (once), and is listed until `done`. */
  const begin = (): { first: SourceResponse | null, onBytes: (n: number) => void, done: () => void } => {
    const first = firstLeft
    firstLeft = null
    const shown: PassingThrough = { key: init.key, url: init.url, size: init.meta.size, received: 0, written: 0, connections: parallel?.connections ?? 1, startedAt: Date.now(), state: 'passthrough' }
    init.passing.add(shown)
    return { first, onBytes: n => { shown.received += n; init.onBytes(n) }, done: () => { init.passing.delete(shown) } }
  }
  return {
    kind: 'blob',
    from: 'passthrough',
    meta: init.meta,
    open: (start, end) => {
      const { first, onBytes, done } = begin()
      const to = init.meta.size === null ? end : Math.min(end, init.meta.size)
      const stream = gatedIfWhole(openPassthrough({ source: init.source, onBytes, version }, first, start, to, parallel), { start, end: to, size: init.meta.size, expected: init.expected ?? null })
      stream.once('close', done)
      return stream
    },
    // Several connections: the ranges ahead wait in recycled buffers (see passthroughChunks).
    chunks: parallel === null || init.meta.size === null
      ? undefined
      : (start, end) => {
          const { first, onBytes, done } = begin()
          const size = init.meta.size ?? end
          const gate = init.expected == null ? null : { expected: init.expected, size }
          const chunks = parallelChunks({ source: init.source, onBytes, version }, first, start, Math.min(end, size), parallel, gate)
          return { ...chunks, close: () => { chunks.close(); done() } }
        },
    release: () => {
      if (firstLeft !== null) discardBody(firstLeft.body)
      firstLeft = null
    }
  }
}

/**
 * Streams [start, end) straight from the upstream without caching (a file larger than the cache, or
 * no room on disk): over several connections with a `parallel` plan (see openParallel), else one.
 */
export function openPassthrough (from: PassthroughFrom, first: SourceResponse | null, start: number, end: number, parallel: ParallelPassthrough | null = null): Readable {
  return parallel === null ? openOne(from, first, start, end) : openParallel(from, first, start, end, parallel)
}

/** Where a pass-through's bytes come from. */
export interface PassthroughFrom {
  source: Source
  /** Counts bytes as they arrive. */
  onBytes: (n: number) => void
  /** The version of the file the client was told of (its first response's): other answers fail the stream. */
  version: PassthroughVersion | null
}

/**
 * One connection: the first response when it starts at `start`, then one Range GET for the rest,
 * resuming at the last byte if the connection breaks. Backpressure flows to the upstream socket.
 */
function openOne (from: PassthroughFrom, first: SourceResponse | null, start: number, end: number): Readable {
  const { source, onBytes, version } = from
  const ac = new AbortController()
  async function * gen (): AsyncGenerator<Buffer> {
    let pos = start
    // A first response only a digest check could vouch for (an open cluster's member) is not passed on:
    // none comes before the last byte here. The range is asked again, for verified bytes only.
    let res = usableFirst(first, start)
    const retries = new RangeRetries(DEFAULT_OUTAGE_MS, ac.signal, new StallWatch(DEFAULT_STALL_CAP_MS))
    try {
      while (pos < end) {
        const before = pos
        const attempt = retries.watch.attempt(ac.signal, retries.stalls)
        try {
          const asked = await askRange(source, res, { pos, end }, attempt, { version })
          res = asked.res
          /** Bytes of the body before `pos` (an upstream without Range support sends the whole file). */
          let skip = asked.skip
          for await (const body of res.body as AsyncIterable<Buffer>) {
            attempt.touch()
            onBytes(body.length)
            const chunk = dropHead(body, skip)
            skip -= body.length - chunk.length
            if (chunk.length === 0) continue
            const take = Math.min(chunk.length, end - pos)
            pos += take
            // A reader that takes its time is not a stalled upstream.
            attempt.hold(true)
            yield take === chunk.length ? chunk : chunk.subarray(0, take)
            attempt.hold(false)
            if (pos >= end) break
          }
        } catch (err) {
          if (res !== null) discardBody(res.body)
          res = null
          await retries.again(attempt.failure(err), before, pos)
        } finally {
          attempt.done()
          if (res !== null) discardBody(res.body)
          res = null
        }
      }
    } finally {
      ac.abort()
    }
  }
  return Readable.from(gen(), { objectMode: false })
}

/**
 * A file passed through uncached holds the ranges ahead of its reader in memory, never the file: at most
 * this much. Against an upstream that throttles each connection more connections beat larger ranges,
 * so ranges are as small as is worth a request (one request's wait stays a small part of a range: a
 * range of 128 KiB at 4 MB/s takes 31 ms) and as many run as the rule allows within this.
 */
const PASSTHROUGH_MEMORY = 16 << 20
const MAX_PASSTHROUGH_CONNECTIONS = 64

/** The smallest range worth a request to an upstream whose first response took `latencyMs`. */
function smallestPassthroughPiece (latencyMs: number | undefined): number {
  if (latencyMs === undefined || latencyMs > 50) return 1 << 20
  return latencyMs <= 20 ? 128 << 10 : 512 << 10
}

/**
 * Several connections (at most the rule's) when the upstream takes Range requests; null: one. Ranges
 * are whole multiples of the source's `alignment` (a peer verifies whole units: a smaller range would
 * cost it a whole unit's bytes).
 */
export function passthroughPlan (rangeSupported: boolean, concurrency: number, latencyMs?: number, alignment = 1): ParallelPassthrough | null {
  if (!rangeSupported) return null
  const pieceSize = Math.max(smallestPassthroughPiece(latencyMs), alignment)
  const connections = Math.max(1, Math.min(concurrency, MAX_PASSTHROUGH_CONNECTIONS, Math.floor(PASSTHROUGH_MEMORY / pieceSize)))
  return { connections, pieceSize }
}

export interface ParallelPassthrough {
  /** Ranges fetched at once (the one the reader is at is handed out as it lands, the others wait their turn). */
  connections: number
  /** Bytes per range: the memory held is at most connections × pieceSize. */
  pieceSize: number
  /** How long an upstream away since a range's last progress is waited for (see RangeRetries; default DEFAULT_OUTAGE_MS). */
  outageMs?: number
  /** The read timeout: the longest a request may send nothing (see StallWatch; default DEFAULT_STALL_CAP_MS). */
  stallCapMs?: number
  /** How long the file's first response took: later requests may take as long (see StallWatch). */
  answeredInMs?: number
}

/**
 * [start, end) over several connections (`plan`) as recycled chunks (see passthroughChunks): an
 * upstream that throttles each connection would otherwise give a file larger than the cache one
 * connection's speed. The first range takes the first response when it starts at `start`; each range
 * resumes at its last byte if its connection breaks.
 */
function parallelChunks (from: PassthroughFrom, first: SourceResponse | null, start: number, end: number, plan: ParallelPassthrough, gate: PassthroughChunksInit['gate'] = null): BlobChunks {
  const { source, onBytes, version } = from
  const watch = new StallWatch(plan.stallCapMs ?? DEFAULT_STALL_CAP_MS, plan.answeredInMs)
  return passthroughChunks({
    start,
    end,
    headEnd: headEndOf(first, start, end, plan.pieceSize),
    pieceSize: plan.pieceSize,
    connections: plan.connections,
    fillRange: async (into, isFirst, signal) => { await fillRange(source, isFirst ? first : null, into, onBytes, signal, { outageMs: plan.outageMs, watch, version }) },
    gate
  })
}

/** The same as a stream, for readers that keep what they are given: each chunk is copied out and its buffer given back at once. */
function openParallel (from: PassthroughFrom, first: SourceResponse | null, start: number, end: number, plan: ParallelPassthrough): Readable {
  const chunks = parallelChunks(from, first, start, end, plan)
  async function * gen (): AsyncGenerator<Buffer> {
    try {
      for (let view = await chunks.next(); view !== null; view = await chunks.next()) {
        const copy = Buffer.from(view)
        chunks.recycle(view)
        yield copy
      }
    } finally {
      chunks.close()
    }
  }
  return Readable.from(gen(), { objectMode: false })
}

/**
 * Where the first range of a parallel pass-through ends: the first response's end when it starts
 * there (it is read whole rather than cut), at most HEAD_MAX past the start (a larger one is cut:
 * held ranges are in memory); else one piece.
 */
function headEndOf (first: SourceResponse | null, start: number, end: number, pieceSize: number): number {
  const firstEnd = first !== null && first.contentRange?.start === start ? first.contentRange.end + 1 : null
  return Math.min(end, firstEnd === null ? start + pieceSize : Math.min(firstEnd, start + Math.max(pieceSize, HEAD_MAX)))
}
const HEAD_MAX = 8 << 20


/**
 * `stream`, the bytes [start, end) of a blob a client reads, digest-gated when that is the whole blob
 * and its digest is known (see digestGated); as it is otherwise (a range has no digest to check, as
 * with any Range request). `before` hashes the bytes the client had before `stream`, when that is only
 * the rest of the blob.
 */
export function gatedIfWhole (stream: Readable, read: { start: number, end: number, size: number | null, expected: ExpectedDigest | null }, before?: (hash: Hash) => Promise<void>): Readable {
  const { start, end, size, expected } = read
  return expected !== null && size !== null && start === 0 && end === size ? digestGated(stream, expected, size, before) : stream
}

/**
 * The whole blob, hashed in order as it streams, its last chunk held back until the digest matched: on
 * a mismatch the stream fails before it, so the client sees a failed transfer, never a complete
 * response with wrong bytes (the same guarantee as a download streamed while it runs). `before`, when
 * `whole` is only the rest of the blob, hashes the bytes the client was given before it.
 */
function digestGated (whole: Readable, expected: ExpectedDigest, size: number, before?: (hash: Hash) => Promise<void>): Readable {
  async function * gen (): AsyncGenerator<Buffer> {
    const hash = createDigest(expected.algorithm, size)
    let held: Buffer | null = null
    try {
      if (before !== undefined) await before(hash)
      for await (const chunk of whole) {
        hash.update(chunk as Buffer)
        if (held !== null) yield held
        held = chunk as Buffer
      }
    } finally {
      whole.destroy()
    }
    if (hash.digest('hex') !== expected.hex) throw new DigestMismatchError(undefined, { detail: { expected: digestLabel(expected) } })
    if (held !== null) yield held
  }
  return Readable.from(gen(), { objectMode: false })
}
