import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { MetadataStore } from '../../../node/metadata/store.ts'

const silent = pino({ level: 'silent' })

describe('the metadata store\'s index', () => {
  it('damaged: the store starts anyway, empty; held by another store: it refuses', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-meta-'))
    try {
      const first = new MetadataStore({ logger: silent }, { dir })
      await first.start()
      await first.putHints([['a', '1']])
      expect(await first.getHint('a')).toBe('1')
      await expect(new MetadataStore({ logger: silent }, { dir }).start()).rejects.toThrow()
      await first.stop()
      const index = join(dir, 'index')
      for (const name of await readdir(index)) if (name.startsWith('MANIFEST')) await writeFile(join(index, name), Buffer.alloc(300, 7))
      const again = new MetadataStore({ logger: silent }, { dir })
      await again.start()
      expect(await again.getHint('a')).toBeUndefined()
      await again.putHints([['a', '2']])
      expect(await again.getHint('a')).toBe('2')
      await again.stop()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
