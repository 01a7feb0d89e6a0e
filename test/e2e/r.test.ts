/**
 * R (r-base-core's Rscript) installing through the mirror at /cran: source packages built in the test
 * with `R CMD build` and indexed with `tools::write_PACKAGES`. The mirror reads the index, then the
 * repository publishes a new version of the dependency and moves the old one to Archive; R, still
 * working from the mirror's index, gets the old version from Archive. A second install runs with the
 * repository stopped.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startTestNode } from '../helpers/node.ts'
import type { TestNode } from '../helpers/node.ts'
import { readRepoDir, startCranRepo } from '../fixtures/upstreams/cran-repo.ts'
import type { CranRepo } from '../fixtures/upstreams/cran-repo.ts'

const run = promisify(execFile)

let work: string
let repo: CranRepo | null = null
let node: TestNode | null = null

beforeEach(async () => { work = await mkdtemp(join(tmpdir(), 'aimirror-r-')) })
afterEach(async () => {
  await node?.stop()
  await repo?.close()
  node = null
  repo = null
  await rm(work, { recursive: true, force: true })
})

async function makePackage (dir: string, name: string, version: string, imports?: string): Promise<string> {
  const src = join(dir, `${name}-${version}`, name)
  await mkdir(join(src, 'R'), { recursive: true })
  await writeFile(join(src, 'DESCRIPTION'), [
    `Package: ${name}`, `Version: ${version}`, 'Title: Tiny Test Package', 'Description: A tiny package for tests.',
    'License: MIT', 'Author: Test', 'Maintainer: Test <test@example.org>', ...(imports === undefined ? [] : [`Imports: ${imports}`]), ''
  ].join('\n'))
  await writeFile(join(src, 'NAMESPACE'), `export(${name}_version)\n`)
  await writeFile(join(src, 'R', 'v.R'), `${name}_version <- function() "${version}"\n`)
  await run('R', ['CMD', 'build', '--no-manual', '--no-build-vignettes', src], { cwd: dir, timeout: 60_000 })
  return join(dir, `${name}_${version}.tar.gz`)
}

async function rscript (expr: string): Promise<string> {
  const { stdout } = await run('Rscript', ['--vanilla', '-e', expr], { timeout: 60_000, env: { ...process.env, R_LIBS_USER: '', R_PROFILE_USER: '' } })
  return stdout
}

describe('R install.packages through the mirror', () => {
  it('installs a package and its dependency, from Archive when it moved, then with the repository stopped', async () => {
    const contrib = join(work, 'repo', 'src', 'contrib')
    await mkdir(contrib, { recursive: true })
    const built = await Promise.all([
      makePackage(contrib, 'tinydep', '0.1.0'),
      makePackage(contrib, 'tinyr', '1.0.0', 'tinydep')
    ])
    expect(built).toHaveLength(2)
    await rscript(`tools::write_PACKAGES("${contrib}", type = "source")`)
    const newer = await makePackage(join(work, 'later'), 'tinydep', '0.2.0')
    repo = await startCranRepo(await readRepoDir(join(work, 'repo')))
    const upstream = repo.url
    node = await startTestNode({
      rules: [
        { name: 'cran-packages', pattern: '^/(?:cran/)?(?:src/contrib|bin/(?:windows|macosx))/.+\\.(?:tar\\.gz|tgz|zip)$', upstream, handler: 'cran', strategy: 'parallel', path_rewrite: [{ search: '/cran/', replace: '/' }] },
        { name: 'cran', path_prefix: '/cran/', strip_prefix: true, upstream, handler: 'cran', strategy: 'proxy', metadata_ttl_s: 600 }
      ]
    })
    const repos = `${node.url}/cran`
    // The mirror reads the index now (what R's available.packages() asks for first).
    for (const index of ['PACKAGES.rds', 'PACKAGES.gz', 'PACKAGES']) {
      expect((await fetch(`${repos}/src/contrib/${index}`)).status).toBe(200)
    }

    // Upstream moves on: tinydep 0.2.0 is published and 0.1.0 goes to Archive (the index the mirror holds is older).
    repo.archive('tinydep_0.1.0.tar.gz')
    repo.files.set('/src/contrib/tinydep_0.2.0.tar.gz', await readFile(newer))

    const lib1 = join(work, 'lib1')
    await mkdir(lib1)
    const out = await rscript(`install.packages("tinyr", repos = "${repos}", lib = "${lib1}", quiet = TRUE); ` +
      `library(tinyr, lib.loc = "${lib1}"); cat(tinyr_version(), as.character(packageVersion("tinydep", lib.loc = "${lib1}")))`)
    expect(out).toBe('1.0.0 0.1.0')
    expect(repo.seen.some(s => s.url === '/src/contrib/Archive/tinydep/tinydep_0.1.0.tar.gz')).toBe(true)

    await repo.close()
    repo = null
    const lib2 = join(work, 'lib2')
    await mkdir(lib2)
    const again = await rscript(`install.packages("tinyr", repos = "${repos}", lib = "${lib2}", quiet = TRUE); ` +
      `cat(as.character(packageVersion("tinyr", lib.loc = "${lib2}")))`)
    expect(again).toBe('1.0.0')
  }, 120_000)
})
