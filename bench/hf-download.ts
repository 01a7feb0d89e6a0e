/**
 * `node bench/hf-download.ts` — `hf_hub_download` of a big safetensors file (default 2 GiB) from a fake
 * HuggingFace Hub whose LFS CDN is throttled per connection (default 4 MB/s), directly and through the
 * mirror (the node as a child process, the default HF rules), cold and warm. Goals: cold through the
 * mirror ≥ 15× the direct rate; first byte of a cold file ≤ 0.5 s; warm reads ≥ 0.7× nginx serving the
 * same bytes from disk. Prints a markdown table. Needs the local wheelhouse (huggingface_hub, hf_xet).
 *
 *   node bench/hf-download.ts [--size 2GiB] [--per-conn 4MB] [--conns 32] [--version 2.0.0]
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { findWheelhouse, hfPython } from '../test/e2e/hf/python-env.ts'
import { lfsSha256, startFakeHub } from '../test/fixtures/upstreams/hf-hub.ts'
import { hfRules } from '../test/fixtures/upstreams/hf-node.ts'
import { parseSize } from './args.ts'
import { download } from './client.ts'
import { findNginx, startNginx } from './nginx.ts'
import { startNode } from './node-under-test.ts'
import { Children } from './procs.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values } = parseArgs({
  options: {
    size: { type: 'string' },
    'size-mib': { type: 'string' },
    'per-conn': { type: 'string', default: '4MB' },
    conns: { type: 'string', default: '32' },
    version: { type: 'string', default: '2.0.0' }
  }
})
const size = values.size !== undefined ? parseSize(values.size) : Number(values['size-mib'] ?? '2048') * 1024 * 1024
const perConn = parseSize(values['per-conn'])
const conns = Number(values.conns)
const version = values.version
const MB = 1e6
const C = 'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0'
const log = (line: string): void => { process.stderr.write(`bench-hf: ${line}\n`) }

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 1/100 s). */
async function procCpuSeconds (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Where a phase's CPU went: the node, the client, this process (fake hub and CDN, raw client). */
interface CpuSplit { node: number, client: number | null, bench: number, wall: number, load: number }

function cpuNote (c: CpuSplit): string {
  return `CPU s: node ${c.node.toFixed(1)}, client ${c.client === null ? '–' : c.client.toFixed(1)}, hub+CDN ${c.bench.toFixed(1)} in ${c.wall.toFixed(1)} s (load ${c.load.toFixed(1)})`
}

interface Row { what: string, mbps: number | null, ratio: string, goal: string, ok: string, notes: string }

async function main (): Promise<number> {
  const wheelhouse = findWheelhouse(version)
  if (wheelhouse === null) {
    log(`no local wheelhouse with huggingface_hub ${version} and hf_xet: nothing to measure`)
    return 2
  }
  const python = await hfPython(version, wheelhouse)
  const script = join(root, 'test', 'e2e', 'hf', 'hf_client.py')
  const tmp = await mkdtemp(join(tmpdir(), 'aimirror-bench-hf-'))
  const children = new Children()
  process.on('exit', () => { children.killAllNow() })
  const files = {
    big: { size, seed: 11 },
    probe: { size: 256 << 20, seed: 12 },
    direct: { size: 32 << 20, seed: 13 }
  }
  log('hashing the generated files')
  const sha = { big: lfsSha256(files.big.size, files.big.seed), probe: lfsSha256(files.probe.size, files.probe.seed), direct: lfsSha256(files.direct.size, files.direct.seed) }
  const hub = await startFakeHub({
    repos: [{
      id: 'acme/big',
      commits: { [C]: { 'model.safetensors': { lfs: files.big }, 'probe.safetensors': { lfs: files.probe }, 'direct.safetensors': { lfs: files.direct } } },
      refs: { main: C }
    }],
    cdn: { perConnectionBps: perConn }
  })
  const rows: Row[] = []
  try {
    const nodeBin = join(root, 'node_modules', '.bin', 'node')
    const node = await startNode(children, { nodeBin, root, tmp, upstreamUrl: hub.url, conns, rules: hfRules(hub.url, { concurrency: conns }) })
    let n = 0
    const measured = async <T>(fn: () => Promise<T>, clientCpu: (r: T) => number | null): Promise<[T, CpuSplit]> => {
      const node0 = await procCpuSeconds(node.pid)
      const bench0 = process.cpuUsage()
      const t0 = performance.now()
      const r = await fn()
      const bench = process.cpuUsage(bench0)
      return [r, { node: await procCpuSeconds(node.pid) - node0, client: clientCpu(r), bench: (bench.user + bench.system) / 1e6, wall: (performance.now() - t0) / 1000, load: loadavg()[0] ?? 0 }]
    }
    const fetchPy = async (endpoint: string, file: string, extraEnv: Record<string, string> = {}): Promise<{ seconds: number, sha256: string, cpu_seconds: number }> => {
      const home = join(tmp, `py-${n++}`)
      const { stdout } = await promisify(execFile)(python, [script, 'fetch', 'acme/big', file], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HF_ENDPOINT: endpoint, HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HOME: home, HF_HUB_DISABLE_PROGRESS_BARS: '1', HF_HUB_DISABLE_TELEMETRY: '1', ...extraEnv },
        maxBuffer: 1 << 20,
        timeout: 1800_000
      })
      const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { seconds: number, sha256: string, cpu_seconds: number }
      await rm(home, { recursive: true, force: true })
      return out
    }

    log('direct: hf_hub_download from the hub (Xet off: plain HTTP, one connection)')
    const direct = await fetchPy(hub.url, 'direct.safetensors', { HF_HUB_DISABLE_XET: '1' })
    if (direct.sha256 !== sha.direct) throw new Error('direct download has the wrong bytes')
    const directMbps = files.direct.size / MB / direct.seconds
    rows.push({ what: 'direct, hf_hub_download', mbps: directMbps, ratio: `${(directMbps * MB / perConn).toFixed(2)} × per-conn`, goal: '≈ 1', ok: '–', notes: `${files.direct.size >> 20} MiB, no mirror` })

    log('first byte of a cold file through the mirror')
    const probe = await download(`${node.url}/acme/big/resolve/main/probe.safetensors`, { timeoutMs: 600_000 })
    if (probe.sha256 !== sha.probe || probe.status !== 200) throw new Error(`probe download failed: ${probe.status} ${probe.error ?? ''}`)
    rows.push({ what: 'cold first byte (raw GET)', mbps: files.probe.size / MB / (probe.totalMs / 1000), ratio: `${(probe.ttfbMs / 1000).toFixed(3)} s`, goal: '≤ 0.5 s', ok: probe.ttfbMs <= 500 ? 'yes' : 'no', notes: `${files.probe.size >> 20} MiB` })

    log(`cold: hf_hub_download of ${Math.round(size / 2 ** 20)} MiB through the mirror`)
    hub.cdn.stats.reset()
    const hubBefore = hub.requests.length
    const [cold, coldCpu] = await measured(async () => await fetchPy(node.url, 'model.safetensors'), r => r.cpu_seconds)
    const cdn = hub.cdn.stats
    const hubCalls = hub.requests.slice(hubBefore).map(r => `${r.method} ${r.path.includes('/resolve/') ? 'resolve' : r.path}`)
    const hubNote = [...new Set(hubCalls)].map(c => `${hubCalls.filter(x => x === c).length} ${c}`).join(', ')
    if (cold.sha256 !== sha.big) throw new Error('cold download has the wrong bytes')
    const coldMbps = size / MB / cold.seconds
    rows.push({ what: 'cold, hf_hub_download via mirror', mbps: coldMbps, ratio: `${(coldMbps / directMbps).toFixed(1)} × direct`, goal: '≥ 15', ok: coldMbps / directMbps >= 15 ? 'yes' : 'no', notes: `rule concurrency ${conns}; CDN: peak ${cdn.peakConnections} connections, ${cdn.cdnRequests} requests, ${(cdn.bytesSent / size).toFixed(3)} × size; hub: ${hubNote}; ${cpuNote(coldCpu)}` })

    log('warm: hf_hub_download again (fresh client cache)')
    const [warm, warmCpu] = await measured(async () => await fetchPy(node.url, 'model.safetensors'), r => r.cpu_seconds)
    if (warm.sha256 !== sha.big) throw new Error('warm download has the wrong bytes')
    const warmPyMbps = size / MB / warm.seconds
    rows.push({ what: 'warm, hf_hub_download via mirror', mbps: warmPyMbps, ratio: '–', goal: '–', ok: '–', notes: `client writes to disk; ${cpuNote(warmCpu)}` })

    const best = async (url: string): Promise<number> => {
      let top = 0
      for (let i = 0; i < 3; i++) {
        const d = await download(url, { timeoutMs: 600_000 })
        if (d.sha256 !== sha.big) throw new Error(`warm read of ${url} has the wrong bytes`)
        top = Math.max(top, size / MB / (d.totalMs / 1000))
      }
      return top
    }
    log('warm raw reads: mirror vs nginx (best of three)')
    const warmRaw = await best(`${node.url}/acme/big/resolve/main/model.safetensors`)
    const nginxBin = findNginx()
    if (nginxBin !== null) {
      const ng = await startNginx(children, nginxBin, join(tmp, 'cache', 'blobs', 'sha256', sha.big.slice(0, 2)), join(tmp, 'nginx'))
      const nginxMbps = await best(`${ng.url}/${sha.big}`)
      rows.push({ what: 'warm, raw GET via mirror', mbps: warmRaw, ratio: `${(warmRaw / nginxMbps).toFixed(2)} × nginx`, goal: '≥ 0.7', ok: warmRaw / nginxMbps >= 0.7 ? 'yes' : 'no', notes: `nginx ${nginxMbps.toFixed(0)} MB/s` })
    } else {
      rows.push({ what: 'warm, raw GET via mirror', mbps: warmRaw, ratio: 'n/a (nginx not installed)', goal: '≥ 0.7', ok: '–', notes: '' })
    }
  } finally {
    await children.stopAll()
    await hub.close()
    await rm(tmp, { recursive: true, force: true })
  }
  const lines = [
    `hf_hub_download ${version}, ${Math.round(size / 2 ** 20)} MiB, CDN ${(perConn / MB).toFixed(1)} MB/s per connection, ${conns} connections`,
    '',
    '| what | MB/s | ratio | goal | ok | notes |',
    '|---|---|---|---|---|---|',
    ...rows.map(r => `| ${r.what} | ${r.mbps === null ? '–' : r.mbps.toFixed(1)} | ${r.ratio} | ${r.goal} | ${r.ok} | ${r.notes} |`)
  ]
  process.stdout.write(lines.join('\n') + '\n')
  return 0
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  log(`failed: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
})
