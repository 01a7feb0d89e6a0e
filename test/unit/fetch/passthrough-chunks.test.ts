import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import type { BlobChunks } from '../../../node/fetch/blob-chunks.ts'
import { passthroughChunks } from '../../../node/fetch/passthrough-chunks.ts'
import type { RangeTarget } from '../../../node/fetch/passthrough-range.ts'

const KiB = 1024
const data = Buffer.alloc(300 * KiB + 7)
for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) & 0xff
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

interface Opened { start: number, end: number, first: boolean, signal: AbortSignal }

/** Fills a range in 4 KiB chunks, the later ranges answering first (3 ms less per range). */
function ranges (opened: Opened[], fail?: { start: number }) {
  return async (into: RangeTarget, first: boolean, signal: AbortSignal): Promise<void> => {
    const end = into.start + into.buf.length
    opened.push({ start: into.start, end, first, signal })
    await sleep(Math.max(0, 30 - opened.length * 3), undefined, { signal })
    for (let p = into.start; p < end; p += 4 * KiB) {
      if (fail !== undefined && p >= fail.start) throw new Error('connection reset')
      const n = data.copy(into.buf, into.filled, p, Math.min(end, p + 4 * KiB))
      into.filled += n
      into.landed()
      await sleep(0, undefined, { signal })
    }
  }
}

/** Reads like the HTTP layer: up to four views written at once, each checked and given back later. */
async function drain (chunks: BlobChunks, start: number): Promise<Buffer> {
  const out: Buffer[] = []
  const lent: Array<{ view: Buffer, at: number, copy: Buffer }> = []
  let pos = start
  try {
    for (let view = await chunks.next(); view !== null; view = await chunks.next()) {
      lent.push({ view, at: pos, copy: Buffer.from(view) })
      out.push(Buffer.from(view))
      pos += view.length
      if (lent.length === 4) {
        const done = lent.shift()!
        // Still the bytes it was handed out with: its buffer was not lent again meanwhile.
        expect(done.view.equals(done.copy)).toBe(true)
        chunks.recycle(done.view)
      }
    }
  } finally {
    for (const l of lent) chunks.recycle(l.view)
    chunks.close()
  }
  return Buffer.concat(out)
}

describe('passthroughChunks: a parallel pass-through in recycled buffers', () => {
  it('gives the bytes in order while later ranges land first, buffers reused only once given back', async () => {
    const opened: Opened[] = []
    const chunks = passthroughChunks({ start: 0, end: data.length, headEnd: 40 * KiB, pieceSize: 32 * KiB, connections: 4, fillRange: ranges(opened) })
    expect((await drain(chunks, 0)).equals(data)).toBe(true)
    // The first range is the first response's (40 KiB), then 32 KiB ranges, four at a time at most.
    expect(opened.map(r => [r.start, r.end, r.first]).slice(0, 3)).toEqual([[0, 40 * KiB, true], [40 * KiB, 72 * KiB, false], [72 * KiB, 104 * KiB, false]])
    expect(opened.at(-1)?.end).toBe(data.length)
  })

  it('a range of the file from its middle', async () => {
    const opened: Opened[] = []
    const chunks = passthroughChunks({ start: 1000, end: 200 * KiB + 3, headEnd: 1000 + 32 * KiB, pieceSize: 32 * KiB, connections: 3, fillRange: ranges(opened) })
    expect((await drain(chunks, 1000)).equals(data.subarray(1000, 200 * KiB + 3))).toBe(true)
  })

  it('the whole file with its digest: given whole when it matches, failed before its last bytes when not', async () => {
    const good = passthroughChunks({ start: 0, end: data.length, headEnd: 32 * KiB, pieceSize: 32 * KiB, connections: 4, fillRange: ranges([]), gate: { expected: { algorithm: 'sha256', hex: sha(data) }, size: data.length } })
    expect(sha(await drain(good, 0))).toBe(sha(data))

    const bad = passthroughChunks({ start: 0, end: data.length, headEnd: 32 * KiB, pieceSize: 32 * KiB, connections: 4, fillRange: ranges([]), gate: { expected: { algorithm: 'sha256', hex: 'ab'.repeat(32) }, size: data.length } })
    let got = 0
    await expect((async () => {
      for (let view = await bad.next(); view !== null; view = await bad.next()) { got += view.length; bad.recycle(view) }
    })()).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' })
    bad.close()
    expect(got).toBeLessThan(data.length)
    expect(got).toBeGreaterThan(data.length - 33 * KiB)
  })

  it('a range that fails fails the stream at its turn, after every byte that landed before the failure', async () => {
    const opened: Opened[] = []
    const chunks = passthroughChunks({ start: 0, end: data.length, headEnd: 32 * KiB, pieceSize: 32 * KiB, connections: 4, fillRange: ranges(opened, { start: 100 * KiB }) })
    let got = 0
    await expect((async () => {
      for (let view = await chunks.next(); view !== null; view = await chunks.next()) {
        expect(view.equals(data.subarray(got, got + view.length))).toBe(true)
        got += view.length
        chunks.recycle(view)
      }
    })()).rejects.toThrow('connection reset')
    expect(got).toBe(100 * KiB)
    chunks.close()
    await sleep(10)
    expect(opened.every(r => r.signal.aborted)).toBe(true)
  })
})
