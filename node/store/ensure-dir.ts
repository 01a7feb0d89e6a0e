import { mkdir, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

/**
 * `mkdir -p`, one level at a time. Node's recursive mkdir loops for ever where a directory refuses
 * children while it exists (under /proc: ENOENT for a parent that is there): a cache dir there would
 * hang the start instead of failing it.
 */
export async function ensureDir (path: string): Promise<void> {
  const missing: string[] = []
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      if (!(await stat(p)).isDirectory()) throw Object.assign(new Error(`${p} is not a directory`), { code: 'ENOTDIR' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      missing.push(p)
      if (dirname(p) === p) break
    }
  }
  for (const dir of missing.reverse()) {
    await mkdir(dir).catch((err: unknown) => { if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err })
  }
}
