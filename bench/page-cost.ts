/**
 * What writing new bytes costs this machine: a file of several GiB written in 1 MiB writes, each GiB
 * timed with its system CPU, into a directory (default: the system temp dir; give the cache's disk).
 * On a bare machine every GiB costs about the same (a copy into the page cache, a few GB/s). In a VM
 * whose balloon reports free memory to its host, the pages the kernel hands out afresh each cost a
 * host fault: the writes run at a few hundred MB/s and seconds of system CPU per GiB (except right
 * after a large delete: pages freed a moment ago are not reported yet). Each cold download pays that per GiB it caches, which
 * the cluster bench's CPU columns include.
 *   npx node bench/page-cost.ts [--dir DIR] [--gib N]
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { dir: { type: 'string' }, gib: { type: 'string' } } })
const gib = Number(values.gib ?? '4')
if (!Number.isInteger(gib) || gib < 1) throw new Error(`--gib: expected an integer ≥ 1, got "${values.gib}"`)
const dir = mkdtempSync(join(values.dir ?? tmpdir(), 'aimirror-page-cost-'))
const buf = Buffer.alloc(1 << 20, 0x5a)
const fd = openSync(join(dir, 'blob'), 'w')
try {
  process.stdout.write('| GiB | MB/s | system CPU s |\n|---:|---:|---:|\n')
  for (let g = 0; g < gib; g++) {
    const t0 = performance.now()
    const c0 = process.cpuUsage()
    for (let i = 0; i < 1024; i++) writeSync(fd, buf, 0, buf.length, (g * 1024 + i) * buf.length)
    const s = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(c0)
    process.stdout.write(`| ${g + 1} | ${((1 << 30) / 1e6 / s).toFixed(0)} | ${(cpu.system / 1e6).toFixed(2)} |\n`)
  }
} finally {
  closeSync(fd)
  rmSync(dir, { recursive: true, force: true })
}
