import { execFile, execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A private LAN made of network namespaces: one namespace holds a bridge, each host namespace gets a veth
 * into it and an address in 10.213.7.0/24, with a multicast route so mDNS works. Nothing is attached to
 * the namespace this process runs in, so no packet can leave the test's namespaces.
 */
export class PrivateLan {
  readonly prefix: string
  readonly bridge: string
  readonly hosts: Array<{ ns: string, ip: string }> = []
  private readonly procs: ChildProcess[] = []

  constructor (prefix = `am${process.pid}`) {
    this.prefix = prefix
    this.bridge = `${prefix}br`
  }

  /** Why namespaces cannot be used here, or null when they can. */
  static unavailable (): string | null {
    if (process.platform !== 'linux') return 'network namespaces need Linux'
    if (process.getuid?.() !== 0) return 'creating network namespaces needs root'
    const probe = `amprobe${process.pid}`
    try {
      execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' })
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' })
      return null
    } catch {
      return '"ip netns add" is not permitted here (iproute2 missing or no CAP_SYS_ADMIN)'
    }
  }

  async up (count: number): Promise<void> {
    const ip = async (...args: string[]): Promise<void> => { await run('ip', args) }
    await ip('netns', 'add', this.bridge)
    await ip('-n', this.bridge, 'link', 'set', 'lo', 'up')
    await ip('-n', this.bridge, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', this.bridge, 'link', 'set', 'br0', 'up')
    for (let i = 1; i <= count; i++) {
      const ns = `${this.prefix}h${i}`
      const addr = `10.213.7.${i}`
      await ip('netns', 'add', ns)
      this.hosts.push({ ns, ip: addr })
      await ip('-n', ns, 'link', 'set', 'lo', 'up')
      await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${i}`, 'netns', this.bridge)
      await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
      await ip('-n', ns, 'link', 'set', 'eth0', 'up')
      await ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
      await ip('-n', this.bridge, 'link', 'set', `v${i}`, 'master', 'br0')
      await ip('-n', this.bridge, 'link', 'set', `v${i}`, 'up')
    }
  }

  /** Starts a long-running process inside a namespace; stopped by down(). */
  spawn (ns: string, args: string[], env: NodeJS.ProcessEnv, options: { stdin?: boolean } = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...args], { env, stdio: [options.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    this.procs.push(child)
    return child
  }

  /** Runs a short command inside a namespace and returns its stdout. */
  async exec (ns: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', ns, ...args], { env, timeout: 60_000, maxBuffer: 16 << 20 })
    return stdout
  }

  /**
   * Limits what a host sends (a token bucket on its eth0): a slow link, so a transfer from it is in
   * flight long enough to interrupt. Throws when the kernel has no tbf qdisc.
   */
  async throttle (ns: string, rate: string): Promise<void> {
    await run('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', rate, 'burst', '32kbit', 'latency', '400ms'])
  }

  /** Lifts `throttle`. */
  async unthrottle (ns: string): Promise<void> {
    await run('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root'])
  }

  /** kill -9 of everything running in a host namespace (a machine losing power, as its peers see it). */
  async killAll (ns: string): Promise<number> {
    const pids = await run('ip', ['netns', 'pids', ns]).then(r => r.stdout.split(/\s+/).filter(Boolean), () => [])
    let killed = 0
    for (const pid of pids) {
      try { process.kill(Number(pid), 'SIGKILL'); killed++ } catch { /* already gone */ }
    }
    return killed
  }

  /** Stops every process and deletes every namespace, whatever state they are in. */
  async down (): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM')
    await Promise.all(this.procs.map(async p => await new Promise<void>(resolve => {
      if (p.exitCode !== null || p.signalCode !== null) { resolve(); return }
      const t = setTimeout(() => { p.kill('SIGKILL'); resolve() }, 5000)
      p.once('exit', () => { clearTimeout(t); resolve() })
    })))
    for (const ns of [...this.hosts.map(h => h.ns), this.bridge]) {
      // Anything still running in the namespace goes with it.
      await this.killAll(ns)
      await run('ip', ['netns', 'del', ns]).catch(() => {})
    }
  }
}
