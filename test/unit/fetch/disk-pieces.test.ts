import { describe, expect, it } from 'vitest'
import { DiskPieces } from '../../../node/fetch/disk-pieces.ts'
import { firstGap } from '../../../node/fetch/temp-file.ts'
import type { PartialEntry } from '../../../node/store/index-db.ts'
import { PieceBitmap } from '../../../node/store/partial.ts'

const plan = { size: 1000, pieceSize: 100, count: 10 }

function entry (bitmap: PieceBitmap, spans?: unknown): PartialEntry {
  return {
    url: 'http://u/f',
    size: plan.size,
    pieceSize: plan.pieceSize,
    bitmap: bitmap.toBase64(),
    spans: spans as PartialEntry['spans'],
    contentType: null,
    headers: {},
    validator: { etag: null, lastModified: null },
    etag: '"x"',
    expectedDigest: null,
    startedAt: 0,
    updatedAt: 0
  }
}

describe('a download\'s record of its bytes on disk', () => {
  it('records the bytes of unfinished pieces as spans, and a restart takes them back', () => {
    const d = new DiskPieces()
    d.start(plan)
    d.add(0, 150) // piece 0 complete, half of piece 1
    d.add(420, 480)
    d.add(590, 720) // the tail of piece 5, piece 6 whole, part of piece 7
    expect(d.spans()).toEqual([[100, 150], [420, 480], [590, 600], [700, 720]])
    const saved = d.entry({ url: 'http://u/f', meta: { contentType: null, headers: {}, validator: { etag: null, lastModified: null }, etag: '"x"', size: 1000 } as never, expected: null, startedAt: 0 })
    expect(saved?.spans).toEqual(d.spans())

    const again = new DiskPieces()
    again.start(plan, PieceBitmap.fromBase64(plan.count, saved?.bitmap as string), saved?.spans)
    expect(again.written.list()).toEqual(d.written.list())
    expect(again.done).toBe(2)
    expect(firstGap(saved as PartialEntry)).toEqual([150, 420])
  })

  it('counts the bytes landed since the last entry', () => {
    const d = new DiskPieces()
    d.start(plan)
    d.add(0, 40)
    d.add(500, 530)
    expect(d.unrecorded).toBe(70)
    d.entry({ url: 'http://u/f', meta: { contentType: null, headers: {}, validator: { etag: null, lastModified: null }, etag: '"x"', size: 1000 } as never, expected: null, startedAt: 0 })
    expect(d.unrecorded).toBe(0)
  })

  it('ignores spans that are not offsets within the file', () => {
    const bitmap = new PieceBitmap(plan.count)
    bitmap.set(0)
    const d = new DiskPieces()
    d.start(plan, bitmap, [[100, 130], ['a', 5], [900, 5000], [-50, 10], null, [7.5, 9]] as never)
    expect(d.written.list()).toEqual([[0, 130], [900, 1000]])
    const first = new PieceBitmap(plan.count)
    first.set(0)
    expect(firstGap(entry(first, 'not a list'))).toEqual([100, 1000])
  })

  it('keeps at most 1024 spans, the largest', () => {
    const d = new DiskPieces()
    const big = { size: 1 << 30, pieceSize: 1 << 30, count: 1 }
    d.start(big)
    for (let i = 0; i < 2000; i++) d.add(i * 1000, i * 1000 + (i === 1500 ? 900 : 10))
    const spans = d.spans()
    expect(spans).toHaveLength(1024)
    expect(spans).toContainEqual([1_500_000, 1_500_900])
    expect(spans.every(([s], i) => i === 0 || s > (spans[i - 1] as [number, number])[0])).toBe(true)
  })
})
