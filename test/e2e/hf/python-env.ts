/**
 * Python environments with huggingface_hub (and hf_xet) from the machine's local wheelhouse, cached
 * under the OS tmp dir keyed by version so reruns take no time. Nothing is fetched from a network index.
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Folders that may hold the wheelhouse (the machine image's local wheels). */
const CANDIDATES = ['/opt/pypi/files', '/opt/wheels']

/** The wheelhouse folder holding huggingface_hub `version` and hf_xet, or null when this machine has none. */
export function findWheelhouse (version: string): string | null {
  for (const dir of CANDIDATES) {
    let names: string[]
    try { names = readdirSync(dir) } catch { continue }
    if (names.some(n => n.startsWith(`huggingface_hub-${version}-`)) && names.some(n => n.startsWith('hf_xet-'))) return dir
  }
  return null
}

/** Path of a venv's python with huggingface_hub==version and hf_xet, created on first use. */
export async function hfPython (version: string, wheelhouse: string): Promise<string> {
  const dir = join(tmpdir(), `aimirror-hf-venv-${version}`)
  const python = join(dir, 'bin', 'python')
  const marker = join(dir, '.aimirror-ready')
  if (existsSync(marker)) return python
  await rm(dir, { recursive: true, force: true })
  await run('python3', ['-m', 'venv', dir])
  await run(join(dir, 'bin', 'pip'), ['install', '--isolated', '--no-index', '--disable-pip-version-check', '--quiet',
    '--find-links', wheelhouse, `huggingface_hub==${version}`, 'hf_xet'], { timeout: 180_000 })
  await run(python, ['-c', 'import hf_xet, huggingface_hub'])
  await writeFile(marker, `huggingface_hub==${version}\n`)
  return python
}
