/**
 * `node bench/oci-pull.ts` — `docker pull` of an image with one big layer (default 1 GiB) from a registry
 * whose blob storage is throttled per connection (default 4 MB/s), through the mirror and through a plain
 * pull-through registry (`docker-registry` in proxy mode), cold and warm. Goals: cold through the mirror
 * ≥ 10× faster than through the pull-through registry; warm ≥ 0.7× as fast as that registry serving from
 * its own disk. Prints a markdown table. Needs root (dockerd), docker-registry, skopeo and dockerd.
 *
 *   node bench/oci-pull.ts [--size-mib 1024] [--per-conn 4000000] [--conns 16] [--warm-rounds 3]
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { createWriteStream, openSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { fileURLToPath } from 'node:url'
import { createGzip } from 'node:zlib'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { run, runOk, startDistribution, stopChild } from '../test/fixtures/upstreams/oci-distribution.ts'
import type { Distribution } from '../test/fixtures/upstreams/oci-distribution.ts'
import { tarHeader, tarPadding } from '../test/fixtures/upstreams/oci-image.ts'
import { startNode } from './node-under-test.ts'
import { Children } from './procs.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const DOCKER = '/usr/bin/docker'
const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    'per-conn': { type: 'string', default: '4000000' },
    conns: { type: 'string', default: '16' },
    'warm-rounds': { type: 'string', default: '3' }
  }
})
const size = Number(values['size-mib']) * 1024 * 1024
const perConn = Number(values['per-conn'])
const conns = Number(values.conns)
const warmRounds = Math.max(1, Number(values['warm-rounds']))
const log = (line: string): void => { process.stderr.write(`bench-oci: ${line}\n`) }

function sha (bytes: Buffer): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex')
}

/**
 * An OCI layout with `library/bench:1.0`: one gzip'd tar layer of `size` random bytes (gzip level 0:
 * random bytes do not compress, and a plain tar would be recompressed by skopeo on push).
 */
async function buildLayout (dir: string): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  const tmp = join(blobs, 'layer.tmp')
  const out = createWriteStream(tmp)
  const gzip = createGzip({ level: 0 })
  const hash = createHash('sha256')
  const diff = createHash('sha256')
  let layerSize = 0
  gzip.on('data', (chunk: Buffer) => {
    hash.update(chunk)
    layerSize += chunk.length
    if (!out.write(chunk)) {
      gzip.pause()
      out.once('drain', () => gzip.resume())
    }
  })
  const gzEnded = once(gzip, 'end')
  const write = async (b: Buffer): Promise<void> => {
    diff.update(b)
    if (!gzip.write(b)) await once(gzip, 'drain')
  }
  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16))
  const zero = Buffer.alloc(4 << 20)
  await write(tarHeader('big.bin', size))
  for (let off = 0; off < size; off += zero.length) await write(keystream.update(zero.subarray(0, Math.min(zero.length, size - off))))
  await write(tarPadding(size))
  await write(Buffer.alloc(1024))
  gzip.end()
  await gzEnded
  out.end()
  await once(out, 'finish')
  const layer = 'sha256:' + hash.digest('hex')
  const diffId = 'sha256:' + diff.digest('hex')
  await rename(tmp, join(blobs, layer.slice(7)))
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } }))
  await writeFile(join(blobs, sha(config).slice(7)), config)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: layerSize }]
  }))
  await writeFile(join(blobs, sha(manifest).slice(7)), manifest)
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }]
  }))
}

/** Seconds from the start of a pull: to its last `Download complete` (layers fetched and verified) and to its end. */
interface PullTime { download: number, total: number }

interface Dockerd { pull: () => Promise<PullTime>, rmi: () => Promise<void>, stop: () => Promise<void> }

/**
 * `docker pull bench:1.0` through the Engine API, timing its progress messages: dockerd fetches a
 * layer to a temporary file, verifies it (`Download complete`), then extracts it (`Pull complete`);
 * the download part is what a registry mirror can speed up.
 */
async function pullTimed (socketPath: string): Promise<PullTime> {
  const t0 = performance.now()
  let download = 0
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest({ socketPath, method: 'POST', path: '/images/create?fromImage=bench&tag=1.0' }, (res) => {
      let buf = ''
      let failure: string | null = res.statusCode === 200 ? null : `status ${String(res.statusCode)}`
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buf += chunk
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim()
          buf = buf.slice(nl + 1)
          if (line === '') continue
          const msg = JSON.parse(line) as { status?: string, error?: string }
          if (msg.error !== undefined) failure = msg.error
          if (msg.status === 'Download complete') download = performance.now() - t0
        }
      })
      res.once('end', () => { if (failure === null) resolve(); else reject(new Error(`docker pull failed: ${failure}`)) })
      res.once('error', reject)
    })
    req.once('error', reject)
    req.end()
  })
  const total = performance.now() - t0
  return { download: (download === 0 ? total : download) / 1000, total: total / 1000 }
}

/** A dockerd of its own (fresh data root) whose registry mirror is `mirror`. */
async function startDockerd (dir: string, mirror: string): Promise<Dockerd> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'daemon.json'), '{}')
  const host = new URL(mirror).host
  const child: ChildProcess = spawn('dockerd', [
    '--config-file', join(dir, 'daemon.json'), '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'docker.pid'), '-H', `unix://${join(dir, 'docker.sock')}`,
    '--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-masq=false', '--userland-proxy=false',
    '--registry-mirror', mirror, '--insecure-registry', host
  ], { stdio: ['ignore', 'ignore', openSync(join(dir, 'dockerd.log'), 'a')] })
  const docker = async (args: string[]): Promise<{ code: number | null, out: string }> => {
    const r = await run(DOCKER, ['-H', `unix://${join(dir, 'docker.sock')}`, ...args], { timeoutMs: 3600_000, env: { ...process.env, DOCKER_CONFIG: join(dir, 'cli') } })
    return { code: r.code, out: r.stdout + r.stderr }
  }
  for (let i = 0; (await docker(['version'])).code !== 0; i++) {
    if (i > 150 || child.exitCode !== null) throw new Error('dockerd did not start')
    await sleep(100)
  }
  return {
    async pull () { return await pullTimed(join(dir, 'docker.sock')) },
    async rmi () {
      const r = await docker(['rmi', 'bench:1.0'])
      if (r.code !== 0) throw new Error(`docker rmi failed: ${r.out}`)
    },
    async stop () { await stopChild(child, 20_000) }
  }
}

async function main (): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'aimirror-bench-oci-'))
  const children = new Children()
  const cleanups: Array<() => Promise<void>> = []
  let failed = true
  try {
    log(`building a ${values['size-mib']} MiB layer`)
    const layout = join(tmp, 'layout')
    await buildLayout(layout)
    const origin: Distribution = await startDistribution({ storage: join(tmp, 'origin-data') })
    cleanups.push(async () => await origin.stop())
    log('pushing it to docker-registry')
    await runOk('skopeo', ['copy', '--insecure-policy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${origin.host}/library/bench:1.0`], { timeoutMs: 1800_000 })

    const nodeBin = process.execPath
    const front = children.spawn(nodeBin, [join(root, 'bench', 'oci-upstream-main.ts'), '--registry', origin.url, '--blob-dir', join(layout, 'blobs', 'sha256'), '--per-conn', String(perConn)],
      { logFile: join(tmp, 'front.log'), stdin: 'pipe', pipeStdout: true, cwd: root })
    const [line] = await once(front.stdout!, 'data') as [Buffer]
    const upstream = (JSON.parse(line.toString().split('\n')[0] ?? '{}') as { url: string }).url
    const mirror = await startNode(children, {
      nodeBin, root, tmp: join(tmp, 'mirror'), upstreamUrl: upstream, conns,
      rules: [
        { name: 'oci-blobs', pattern: '^/v2/.+/blobs/sha256:[a-f0-9]{64}$', upstream, handler: 'oci', strategy: 'parallel', concurrency: conns, min_size: 1 },
        { name: 'oci-registry', path_prefix: '/v2/', upstream, handler: 'oci', strategy: 'proxy' }
      ]
    })
    const proxy = await startDistribution({ proxyRemote: upstream, storage: join(tmp, 'proxy-data') })
    cleanups.push(async () => await proxy.stop())

    // Both daemons up at once, pulls interleaved, warm pulls repeated (median): a busy machine slows both sides alike.
    const sides = [['aimirror', mirror.url], ['docker-registry proxy', proxy.url]] as const
    const daemons: Dockerd[] = []
    for (const [name, url] of sides) {
      const d = await startDockerd(join(tmp, `dockerd-${name.split(' ')[0] ?? 'x'}`), url)
      cleanups.push(async () => await d.stop())
      daemons.push(d)
    }
    const cold: PullTime[] = []
    const warm: PullTime[][] = [[], []]
    for (const [i, [name]] of sides.entries()) {
      log(`${name}: cold pull`)
      cold.push(await daemons[i]!.pull())
      await daemons[i]!.rmi()
    }
    for (let round = 0; round < warmRounds; round++) {
      for (const [i, [name]] of sides.entries()) {
        log(`${name}: warm pull ${round + 1}/${warmRounds}`)
        warm[i]!.push(await daemons[i]!.pull())
        await daemons[i]!.rmi()
      }
    }
    const median = (xs: PullTime[], pick: (p: PullTime) => number): number => {
      const v = xs.map(pick).sort((a, b) => a - b)
      return v[Math.floor(v.length / 2)] ?? Number.NaN
    }
    const rows = sides.map(([name], i): [string, PullTime, PullTime] => {
      const w = warm[i]!
      const row: [string, PullTime, PullTime] = [name, cold[i]!, { download: median(w, p => p.download), total: median(w, p => p.total) }]
      log(`${name}: cold ${row[1].total.toFixed(1)} s (download ${row[1].download.toFixed(1)} s), warm ${w.map(p => `${p.total.toFixed(1)} (${p.download.toFixed(1)})`).join(', ')} s`)
      return row
    })
    const [ours, theirs] = rows as [[string, PullTime, PullTime], [string, PullTime, PullTime]]
    const ratio = (a: number, b: number, digits: number): string => (a / b).toFixed(digits)
    process.stdout.write([
      `docker pull, one ${values['size-mib']} MiB layer, blob storage throttled to ${(perConn / 1e6).toFixed(1)} MB/s per connection, mirror concurrency ${conns}`,
      '',
      '| path | cold download (s) | cold pull (s) | warm download (s, median) | warm pull (s, median) |',
      '|---|---:|---:|---:|---:|',
      ...rows.map(([n, c, w]) => `| ${n} | ${c.download.toFixed(1)} | ${c.total.toFixed(1)} | ${w.download.toFixed(1)} | ${w.total.toFixed(1)} |`),
      '',
      'download: until dockerd has the layer verified (`Download complete`); pull: until `docker pull` returns (download + extraction).',
      `cold speed-up (goal ≥ 10×): download ${ratio(theirs[1].download, ours[1].download, 1)}×, whole pull ${ratio(theirs[1].total, ours[1].total, 1)}×`,
      `warm vs the pull-through registry from its own disk (goal ≥ 0.7×): download ${ratio(theirs[2].download, ours[2].download, 2)}×, whole pull ${ratio(theirs[2].total, ours[2].total, 2)}×`,
      ''
    ].join('\n'))
    failed = false
  } finally {
    await children.stopAll()
    for (const c of cleanups.reverse()) await c().catch(() => {})
    // Logs of a failed run are kept for a look.
    if (failed) log(`logs kept in ${tmp}`)
    else await rm(tmp, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-oci: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
