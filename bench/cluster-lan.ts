import { execFile, execFileSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import type { Children } from './procs.ts'

const run = promisify(execFile)

export interface LanHost {
  ns: string
  ip: string
}

/**
 * A private LAN of network namespaces for the cluster bench: one namespace holds a bridge, each host
 * namespace gets a veth into it and an address in 10.213.9.0/24. Nothing is attached to the namespace
 * the bench runs in, so no packet leaves the bench's namespaces. The bench reaches hosts only by
 * running commands inside them (`ip netns exec`).
 */
export class BenchLan {
  readonly prefix: string
  readonly bridge: string
  readonly hosts: LanHost[] = []
  readonly #children: Children

  constructor (children: Children, prefix = `amb${process.pid}`) {
    this.#children = children
    this.prefix = prefix
    this.bridge = `${prefix}br`
  }

  /** Why namespaces cannot be used here, or null when they can. */
  static unavailable (): string | null {
    if (process.platform !== 'linux') return 'network namespaces need Linux'
    if (process.getuid?.() !== 0) return 'creating network namespaces needs root'
    const probe = `ambprobe${process.pid}`
    try {
      execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' })
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' })
      return null
    } catch {
      return '"ip netns add" is not permitted here (iproute2 missing or no CAP_SYS_ADMIN)'
    }
  }

  /** Creates the bridge and `count` hosts (10.213.9.1 …). */
  async up (count: number): Promise<void> {
    const ip = async (...args: string[]): Promise<void> => { await run('ip', args) }
    await ip('netns', 'add', this.bridge)
    await ip('-n', this.bridge, 'link', 'set', 'lo', 'up')
    await ip('-n', this.bridge, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', this.bridge, 'link', 'set', 'br0', 'up')
    for (let i = 1; i <= count; i++) {
      const ns = `${this.prefix}h${i}`
      const addr = `10.213.9.${i}`
      await ip('netns', 'add', ns)
      this.hosts.push({ ns, ip: addr })
      await ip('-n', ns, 'link', 'set', 'lo', 'up')
      await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${i}`, 'netns', this.bridge)
      await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
      await ip('-n', ns, 'link', 'set', 'eth0', 'up')
      await ip('-n', this.bridge, 'link', 'set', `v${i}`, 'master', 'br0')
      await ip('-n', this.bridge, 'link', 'set', `v${i}`, 'up')
    }
  }

  host (i: number): LanHost {
    const h = this.hosts[i]
    if (h === undefined) throw new Error(`no LAN host ${i}`)
    return h
  }

  /** A long-running process inside a namespace, tracked (and stopped) by the bench's Children. */
  spawn (ns: string, args: string[], o: { logFile: string; cwd?: string; stdin?: 'pipe' | 'ignore'; pipeStdout?: boolean }): ChildProcess {
    // `ip netns exec` execs the command in place, so the child's pid is the command's own.
    return this.#children.spawn('ip', ['netns', 'exec', ns, ...args], o)
  }

  /** Runs a short command inside a namespace; its stdout. */
  async exec (ns: string, args: string[], timeoutMs = 60_000): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', ns, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 })
    return stdout
  }

  /** Kills whatever still runs in a namespace (a scenario that failed half-way leaves nothing behind). */
  async kill (ns: string): Promise<void> {
    const pids = await run('ip', ['netns', 'pids', ns]).then(r => r.stdout.split(/\s+/).filter(Boolean), () => [])
    for (const pid of pids) {
      try { process.kill(Number(pid), 'SIGKILL') } catch { /* already gone */ }
    }
  }

  /** Kills whatever still runs in the namespaces and deletes them, whatever state they are in. */
  async down (): Promise<void> {
    for (const ns of [...this.hosts.map(h => h.ns), this.bridge]) {
      await this.kill(ns)
      await run('ip', ['netns', 'del', ns]).catch(() => {})
    }
    this.hosts.length = 0
  }
}
