import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ensureDir } from '../../../node/store/ensure-dir.ts'

describe('ensureDir', () => {
  it('makes every missing level, and is content when the directory is there', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-dirs-'))
    try {
      const deep = join(dir, 'a', 'b', 'c')
      await ensureDir(deep)
      expect((await stat(deep)).isDirectory()).toBe(true)
      await ensureDir(deep)
      await writeFile(join(dir, 'file'), 'x')
      await expect(ensureDir(join(dir, 'file', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it.skipIf(!existsSync('/proc/self'))('fails at once where a directory refuses children (Node\'s recursive mkdir loops there)', async () => {
    await expect(ensureDir('/proc/aimirror-nope/cache')).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
