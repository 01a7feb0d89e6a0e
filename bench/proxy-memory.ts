/**
 * `node bench/proxy-memory.ts [--size 2GiB] [--keep]` — a big file through a `proxy` rule from an unthrottled
 * upstream: byte-exact, and the node's resident memory stays flat (goal: peak RSS < 150 MiB).
 * Prints one markdown row; exits 1 when the bytes are wrong.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { generatedSha256 } from '../test/fixtures/upstreams/file-server-content.ts'
import { download } from './client.ts'
import { Children, RssSampler } from './procs.ts'
import { startUpstream } from './upstream.ts'
import { startNode } from './node-under-test.ts'

const GOAL_RSS_MIB = 150
const root = fileURLToPath(new URL('..', import.meta.url))
const { values } = parseArgs({ options: { size: { type: 'string', default: '2GiB' }, keep: { type: 'boolean', default: false } } })
const m = /^(\d+)(MiB|GiB)$/.exec(values.size)
if (m === null) throw new Error(`--size: expected e.g. 512MiB or 2GiB, got "${values.size}"`)
const size = Number(m[1]) * (m[2] === 'GiB' ? 1024 ** 3 : 1024 ** 2)

const nodeBin = existsSync(join(root, 'node_modules', '.bin', 'node')) ? join(root, 'node_modules', '.bin', 'node') : process.execPath
const tmp = await mkdtemp(join(tmpdir(), 'aimirror-bench-proxy-'))
const children = new Children()
process.on('exit', () => { children.killAllNow() })
let code = 0
try {
  const file = { path: '/files/big.bin', size, seed: 7 }
  const upstream = await startUpstream(children, { nodeBin, root, tmp, perConn: 0, aggregate: 0, latencyMs: 0, files: [file] })
  const node = await startNode(children, {
    nodeBin, root, tmp, upstreamUrl: upstream.url, conns: 1,
    rules: [{ name: 'proxied', path_prefix: '/files/', upstream: upstream.url, strategy: 'proxy' }]
  })
  const expected = generatedSha256(size, file.seed)
  const rss = new RssSampler(node.pid)
  rss.start()
  const d = await download(`${node.url}${file.path}`, { timeoutMs: 600_000 })
  const { peakMiB } = rss.stop()
  const direct = await download(`${upstream.url}${file.path}`, { timeoutMs: 600_000 })
  const ok = d.status === 200 && d.complete && d.bytes === size && d.sha256 === expected
  if (!ok) code = 1
  const mbps = (x: typeof d): string => (x.bytes / 1024 / 1024 / (x.totalMs / 1000)).toFixed(0)
  process.stdout.write([
    '| scenario | bytes ok | MiB/s through node | MiB/s direct | ratio | node peak RSS MiB | goal |',
    '|---|---|---|---|---|---|---|',
    `| ${values.size} via proxy rule | ${ok ? 'yes' : `NO (${d.status}, ${d.bytes} B, ${d.error ?? ''})`} | ${mbps(d)} | ${mbps(direct)} | ` +
      `${(direct.totalMs / d.totalMs).toFixed(2)} | ${peakMiB.toFixed(0)} | RSS < ${GOAL_RSS_MIB}: ${peakMiB < GOAL_RSS_MIB ? 'met' : 'NOT met'} |`,
    ''
  ].join('\n'))
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`)
  code = 1
} finally {
  await children.stopAll()
  if (values.keep) process.stderr.write(`bench: kept ${tmp} (configs, logs)\n`)
  else await rm(tmp, { recursive: true, force: true })
}
process.exit(code)
