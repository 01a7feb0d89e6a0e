import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { PIECE_HASH_UNIT } from '../../../protocol/pieces.ts'

const run = promisify(execFile)

/**
 * Silent bit rot in every piece-hash unit of a file: 4 KiB inverted in place near the start of each
 * unit, and the file's times put back to the nanosecond, so size, inode and mtime are what they were
 * (a disk returning bad data, not a program rewriting the file, which the store notices by its mtime).
 * Returns how many units were hit.
 */
export async function rotEveryUnit (path: string): Promise<number> {
  // touch keeps nanoseconds (utimensat); fs.utimes takes a double and would round them.
  const times = join(tmpdir(), `aimirror-rot-${randomBytes(6).toString('hex')}`)
  await writeFile(times, '')
  await run('touch', ['-r', path, times])
  const fh = await open(path, 'r+')
  let units = 0
  try {
    const { size } = await fh.stat()
    const buf = Buffer.alloc(4096)
    for (let at = 0; at < size; at += PIECE_HASH_UNIT) {
      const pos = at + Math.min(512, Math.max(0, size - at - buf.length))
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos)
      for (let i = 0; i < bytesRead; i++) buf[i] = (buf[i] as number) ^ 0xff
      await fh.write(buf, 0, bytesRead, pos)
      units++
    }
    await fh.sync()
  } finally {
    await fh.close()
  }
  await run('touch', ['-r', times, path])
  await rm(times, { force: true })
  return units
}
