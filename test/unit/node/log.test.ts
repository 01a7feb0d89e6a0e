import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLogger } from '../../../node/log.ts'

describe('logging.file', () => {
  const dirs: string[] = []
  afterEach(async () => {
    vi.restoreAllMocks()
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
  })

  it('that cannot be written: the node logs to stdout only, says so, and does not crash', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-log-'))
    dirs.push(dir)
    // A directory path under a regular file can never be made, root or not.
    await writeFile(join(dir, 'plain'), 'x')
    const lines: string[] = []
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true })
    const logger = createLogger({ level: 'info', file: join(dir, 'plain', 'sub', 'aimirror.log') })
    logger.info('still here')
    expect(lines.some(l => l.includes('logging.file cannot be written'))).toBe(true)
    expect(lines.some(l => l.includes('still here'))).toBe(true)
  })

  it('that can be written gets the lines, its directory made', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-log-'))
    dirs.push(dir)
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
    const file = join(dir, 'a', 'b', 'aimirror.log')
    const logger = createLogger({ level: 'info', file })
    logger.info('to the file')
    await new Promise<void>(resolve => { logger.flush(() => resolve()) })
    await vi.waitFor(async () => { expect(await readFile(file, 'utf8')).toContain('to the file') })
  })
})
