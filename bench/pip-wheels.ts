/**
 * The wheels a `pip install <packages>` needs on this machine, resolved once from the local wheelhouses
 * that `pip config list` names (find-links, file:// indexes, constraints) with no network, plus each
 * wheel's PEP 658 `.metadata` (its `*.dist-info/METADATA`) extracted beside it, so the bench upstream
 * can publish what PyPI publishes.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Where pip on this machine finds packages without a network. */
export interface Wheelhouse {
  findLinks: string[]
  /** file:// simple indexes. */
  indexes: string[]
  constraints: string[]
}

export interface BenchWheel {
  /** PEP 503 normal form. */
  project: string
  version: string
  filename: string
  /** The wheel on local disk. */
  path: string
  sha256: string
  size: number
  requiresPython: string | null
  metadataPath: string
  metadataSha256: string
}

const normalize = (n: string): string => n.replace(/[-_.]+/g, '-').toLowerCase()

/** The wheelhouses from `pip config list`, or null when pip has none configured. */
export async function findWheelhouse (python: string): Promise<Wheelhouse | null> {
  let out: string
  try {
    out = (await run(python, ['-m', 'pip', 'config', 'list'], { timeout: 60_000 })).stdout
  } catch {
    return null
  }
  const values = (key: string): string[] => {
    const m = new RegExp(`^(?:global|install|:env:)\\.${key}='([^']*)'`, 'gm')
    return [...out.matchAll(m)].flatMap((x) => (x[1] ?? '').split(/\s+/)).filter((v) => v !== '')
  }
  const uniq = (a: string[]): string[] => [...new Set(a)]
  const house = {
    findLinks: uniq(values('find-links')),
    indexes: uniq([...values('index-url'), ...values('extra-index-url')].filter((u) => u.startsWith('file:'))),
    constraints: uniq(values('constraint'))
  }
  return house.findLinks.length + house.indexes.length === 0 ? null : house
}

// Reads each wheel's METADATA (the file PEP 658 publishes) without unpacking the wheel.
const EXTRACT = `
import sys, zipfile
for whl, out in zip(sys.argv[1::2], sys.argv[2::2]):
    with zipfile.ZipFile(whl) as z:
        name = next(n for n in z.namelist() if n.count('/') == 1 and n.endswith('.dist-info/METADATA'))
        open(out, 'wb').write(z.read(name))
`

interface Report {
  install: Array<{
    metadata: { name: string, version: string, requires_python?: string }
    download_info: { url: string, archive_info?: { hashes?: { sha256?: string } } }
  }>
}

/**
 * Resolves `packages` against the wheelhouse (`pip install --dry-run --report`, offline) and writes the
 * `.metadata` files into `metaDir`. Fails when a pick is not a local wheel (an sdist, a remote URL).
 */
export async function resolveWheels (python: string, house: Wheelhouse, packages: readonly string[], metaDir: string, o: { signal?: AbortSignal } = {}): Promise<BenchWheel[]> {
  const report = join(metaDir, 'report.json')
  const [first, ...extra] = house.indexes
  const args = [
    '-m', 'pip', 'install', '--isolated', '--dry-run', '--ignore-installed', '--quiet', '--disable-pip-version-check',
    '--report', report,
    ...(first === undefined ? ['--no-index'] : ['--index-url', first]),
    ...extra.flatMap((u) => ['--extra-index-url', u]),
    ...house.findLinks.flatMap((d) => ['--find-links', d]),
    ...house.constraints.flatMap((c) => ['--constraint', c]),
    ...packages
  ]
  await run(python, args, { timeout: 600_000, maxBuffer: 16 << 20, signal: o.signal })
  const parsed = JSON.parse(await readFile(report, 'utf8')) as Report
  const wheels: BenchWheel[] = []
  for (const item of parsed.install) {
    const url = item.download_info.url
    if (!url.startsWith('file:') || !url.endsWith('.whl')) throw new Error(`${item.metadata.name}: not a local wheel (${url})`)
    const path = fileURLToPath(url)
    const filename = decodeURIComponent(url.slice(url.lastIndexOf('/') + 1))
    const sha256 = item.download_info.archive_info?.hashes?.sha256
    if (sha256 === undefined) throw new Error(`${filename}: the report gives no sha256`)
    wheels.push({
      project: normalize(item.metadata.name),
      version: item.metadata.version,
      filename,
      path,
      sha256,
      size: (await stat(path)).size,
      requiresPython: item.metadata.requires_python ?? null,
      metadataPath: join(metaDir, `${filename}.metadata`),
      metadataSha256: ''
    })
  }
  await run(python, ['-c', EXTRACT, ...wheels.flatMap((w) => [w.path, w.metadataPath])], { timeout: 120_000, signal: o.signal })
  for (const w of wheels) w.metadataSha256 = createHash('sha256').update(await readFile(w.metadataPath)).digest('hex')
  await writeFile(join(metaDir, 'wheels.json'), JSON.stringify(wheels, null, 1))
  return wheels
}
