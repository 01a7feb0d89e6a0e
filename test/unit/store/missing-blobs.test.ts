import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pino } from 'pino'
import { expect, it } from 'vitest'
import { BlobStore } from '../../../node/store/blob-store.ts'

it('a blob whose file was deleted by hand leaves the budget while the node runs, not when a client next asks for it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aimirror-store-'))
  const init = { dir, maxBytes: 1 << 20, partialSweepEveryMs: 100 }
  const store = new BlobStore({ logger: pino({ level: 'silent' }) }, init)
  try {
    // Two blob files in place before the start: taken into the index.
    const blobs = ['first blob', 'second blob'].map(text => Buffer.from(text))
    const digests = blobs.map(b => createHash('sha256').update(b).digest('hex'))
    for (const [i, b] of blobs.entries()) {
      const path = store.layout.blobPath(digests[i] as string)
      await mkdir(dirname(path), { recursive: true })
      await writeFile(path, b)
    }
    await store.start()
    expect(store.stats()).toMatchObject({ file_count: 2, total_size_bytes: blobs[0]!.length + blobs[1]!.length })
    await rm(store.layout.blobPath(digests[0] as string))
    const end = Date.now() + 5000
    while (store.stats().file_count !== 1 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 50))
    expect(store.stats()).toMatchObject({ file_count: 1, total_size_bytes: blobs[1]!.length })
  } finally {
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  }
})
