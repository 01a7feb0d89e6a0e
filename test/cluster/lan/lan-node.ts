import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PrivateLan } from './namespaces.ts'

export interface LanNodeInit {
  name: string
  host: { ns: string, ip: string }
  /** Where its config and cache go. */
  dir: string
  upstream: string
  /** The cluster key file; null starts the node without one (an open cluster of the same name). */
  keyFile: string | null
  /** The repository root (cli/main.ts is started from there). */
  root: string
}

/** One line of a node's JSON log. */
export type LogLine = Record<string, unknown> & { msg?: string }

/**
 * A node process (the real CLI) inside a host namespace, with mDNS on, its port 8081 on the LAN and
 * its log lines kept for the test to read.
 */
export class LanNode {
  readonly name: string
  readonly ns: string
  readonly ip: string
  readonly cacheDir: string
  private readonly init: LanNodeInit
  private child: ChildProcess | null = null
  private out = ''

  constructor (init: LanNodeInit) {
    this.init = init
    this.name = init.name
    this.ns = init.host.ns
    this.ip = init.host.ip
    this.cacheDir = join(init.dir, `${init.name}-cache`)
  }

  get process (): ChildProcess | null {
    return this.child
  }

  /** Starts the node and resolves once it listens. */
  async start (lan: PrivateLan): Promise<void> {
    const config = join(this.init.dir, `${this.name}.yaml`)
    await writeFile(config, nodeConfig(this.cacheDir, this.init.upstream, this.init.keyFile))
    const child = lan.spawn(this.ns, [process.execPath, join(this.init.root, 'cli/main.ts'), 'start', '-c', config], {
      ...process.env, AIMIRROR_MDNS: '1', AIMIRROR_CLUSTER: '1', AIMIRROR_NO_TUNE: '1'
    })
    this.child = child
    child.stdout?.on('data', (b: Buffer) => { this.out += b.toString() })
    child.stderr?.on('data', (b: Buffer) => { this.out += b.toString() })
    await new Promise<void>((resolve, reject) => {
      // Booting from TypeScript source takes seconds of CPU; five at once on a loaded 2-core machine, a minute or more.
      const t = setTimeout(() => { done(); reject(new Error(`${this.name}: not listening after 150 s: ${this.out.slice(-2000)}`)) }, 150_000)
      const onData = (): void => { if (this.out.includes('aimirror listening')) { done(); resolve() } }
      const onExit = (code: number | null): void => { done(); reject(new Error(`${this.name} exited with ${String(code)}: ${this.out.slice(-2000)}`)) }
      const done = (): void => { clearTimeout(t); child.stdout?.off('data', onData); child.off('exit', onExit) }
      child.stdout?.on('data', onData)
      child.once('exit', onExit)
      onData()
    })
  }

  /** The JSON lines the node logged so far. */
  logs (): LogLine[] {
    const lines: LogLine[] = []
    for (const line of this.out.split('\n')) {
      if (!line.startsWith('{')) continue
      try { lines.push(JSON.parse(line) as LogLine) } catch { /* a line still being written */ }
    }
    return lines
  }
}

/**
 * The config every LAN node runs: an OCI registry rule with 1 MiB pieces (so a blob of a few MiB comes
 * in several ranges, from several holders), the same blobs as plain files under /files/ (a generic rule:
 * keyed by URL, no digest known), the cluster on with mDNS. lookup_ms is generous because the
 * machine may be loaded; members that answer no still let a cold miss go upstream at once.
 */
export function nodeConfig (cacheDir: string, upstream: string, keyFile: string | null): string {
  return `server: { host: "0.0.0.0", port: 8081, read_timeout_s: 10 }
cache: { dir: "${cacheDir}" }
logging: { level: warn }
rules:
  - name: oci-blobs
    pattern: "^/v2/.+/blobs/sha256:[a-f0-9]{64}$"
    upstream: "${upstream}"
    handler: oci
    strategy: parallel
    cache_key_source: original
    min_size: 0
    concurrency: 4
    chunk_size: 1048576
  - name: oci-registry
    path_prefix: "/v2/"
    upstream: "${upstream}"
    handler: oci
    strategy: proxy
  - name: files
    path_prefix: "/files/"
    strip_prefix: true
    upstream: "${upstream}"
    strategy: parallel
    min_size: 0
    concurrency: 4
    chunk_size: 1048576
cluster:
  enabled: true
  name: lan-test
  listen: ["/ip4/0.0.0.0/tcp/4001"]
  data_host: "0.0.0.0"
  data_port: 4002
${keyFile === null ? '' : `  key_file: "${keyFile}"\n`}  lookup_ms: 5000
`
}
