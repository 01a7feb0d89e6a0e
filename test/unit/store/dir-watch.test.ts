import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { watchDirectory } from '../../../node/store/dir-watch.ts'

describe('watchDirectory', () => {
  const dirs: string[] = []
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
  })

  async function indexDir (): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-watch-'))
    dirs.push(dir)
    await mkdir(join(dir, 'index'))
    return join(dir, 'index')
  }

  it('says when the directory is removed', async () => {
    const path = await indexDir()
    const watch = watchDirectory(path, 20)
    await sleep(50)
    await rm(path, { recursive: true })
    expect(await watch.lost).toBe(`the cache index ${path} was removed`)
  })

  it('says when it is replaced by another directory of the same name', async () => {
    const path = await indexDir()
    const watch = watchDirectory(path, 20)
    await sleep(50)
    await rename(path, `${path}.old`)
    await mkdir(path)
    expect(await watch.lost).toBe(`the cache index ${path} was replaced`)
  })

  it('says nothing while it stays, nor once stopped', async () => {
    const path = await indexDir()
    const watch = watchDirectory(path, 20)
    let said = false
    watch.lost.then(() => { said = true }, () => {})
    await sleep(100)
    expect(said).toBe(false)
    watch.stop()
    await rm(path, { recursive: true })
    await sleep(100)
    expect(said).toBe(false)
  })
})
